namespace Namra.Testing;

/// <summary>Waits for something another thread or process does, by looking again until it is so or the time is up.</summary>
public static class Eventually
{
    /// <summary>Returns once <paramref name="condition"/> holds; fails, saying <paramref name="what"/>, when it does not within <paramref name="within"/> (5 s).</summary>
    public static async Task HoldsAsync(Func<bool> condition, TimeSpan? within = null, string what = "the condition")
    {
        ArgumentNullException.ThrowIfNull(condition);
        var until = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(5));
        while (!condition() && DateTime.UtcNow < until)
        {
            await Task.Delay(25).ConfigureAwait(false);
        }

        if (!condition())
        {
            throw new TimeoutException($"Timed out waiting for {what}.");
        }
    }

    /// <summary>Reads with <paramref name="read"/> until what it reads satisfies <paramref name="condition"/>, and returns that; fails like <see cref="HoldsAsync(Func{bool}, TimeSpan?, string)"/>.</summary>
    public static async Task<T> HoldsAsync<T>(Func<Task<T>> read, Func<T, bool> condition, TimeSpan? within = null, string what = "the condition")
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(condition);
        var until = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(5));
        while (true)
        {
            var value = await read().ConfigureAwait(false);
            if (condition(value))
            {
                return value;
            }

            if (DateTime.UtcNow >= until)
            {
                throw new TimeoutException($"Timed out waiting for {what}.");
            }

            await Task.Delay(25).ConfigureAwait(false);
        }
    }
}
