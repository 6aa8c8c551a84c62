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
}
