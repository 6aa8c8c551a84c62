using System.Collections.Concurrent;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// Instances shared by key (MCP sessions, Python plugins), each started once on first use, whoever asks at once: a
/// start that fails is forgotten, so the next caller starts again; an instance is dropped only by a caller holding that
/// very instance, never a newer one started since; all are disposed with the collection.
/// </summary>
internal sealed class SharedInstances<T> : IAsyncDisposable where T : class, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<T>>> _instances = new(StringComparer.Ordinal);

    /// <summary>How many are started or starting.</summary>
    public int Count => _instances.Count;

    /// <summary>The instance for <paramref name="key"/>, started with <paramref name="start"/> if there is none; the start's failure is thrown.</summary>
    public async Task<T> GetAsync(string key, Func<Task<T>> start, CancellationToken cancellationToken)
    {
        var entry = _instances.GetOrAdd(key, _ => new Lazy<Task<T>>(start));
        try
        {
            return await entry.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _instances.TryRemove(KeyValuePair.Create(key, entry));
            throw;
        }
    }

    /// <summary>Drops and disposes <paramref name="instance"/> if it is still the one kept for <paramref name="key"/>.</summary>
    public void Forget(string key, T instance)
    {
        if (_instances.TryGetValue(key, out var entry) && Started(entry) is { } current && ReferenceEquals(current, instance)
            && _instances.TryRemove(KeyValuePair.Create(key, entry)))
        {
            _ = instance.DisposeAsync().AsTask();
        }
    }

    /// <summary>Drops the started instances <paramref name="leaving"/> picks, for the caller to dispose.</summary>
    public List<T> Take(Func<T, bool> leaving)
    {
        var taken = new List<T>();
        foreach (var (key, entry) in _instances)
        {
            if (Started(entry) is { } instance && leaving(instance) && _instances.TryRemove(KeyValuePair.Create(key, entry)))
            {
                taken.Add(instance);
            }
        }

        return taken;
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_instances.Values.Select(Started).OfType<T>().Select(instance => instance.DisposeAsync().AsTask())).ConfigureAwait(false);
        _instances.Clear();
    }

    private static T? Started(Lazy<Task<T>> entry) => entry.IsValueCreated && entry.Value.IsCompletedSuccessfully ? entry.Value.Result : null;
}
