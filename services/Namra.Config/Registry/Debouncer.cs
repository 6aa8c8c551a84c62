namespace Namra.Config.Registry;

/// <summary>
/// Turns a burst of signals into one: <see cref="WaitAsync"/> returns once <c>quiet</c> has passed since the
/// last <see cref="Signal"/>. Editors save files in several steps (truncate, write, rename); reloading once
/// the folder is quiet sees the finished file.
/// </summary>
internal sealed class Debouncer(TimeSpan quiet, TimeProvider timeProvider) : IDisposable
{
    private readonly SemaphoreSlim _signalled = new(0, 1);
    private long _lastSignal;

    public void Signal()
    {
        Interlocked.Exchange(ref _lastSignal, timeProvider.GetTimestamp());
        if (_signalled.CurrentCount == 0)
        {
            try
            {
                _signalled.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another signal got there first; one pending wake-up is enough.
            }
        }
    }

    /// <summary>Waits for a signal, then for the quiet period after the latest one.</summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        await _signalled.WaitAsync(cancellationToken).ConfigureAwait(false);
        while (true)
        {
            var since = timeProvider.GetElapsedTime(Interlocked.Read(ref _lastSignal));
            if (since >= quiet)
            {
                return;
            }

            await Task.Delay(quiet - since, timeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose() => _signalled.Dispose();
}
