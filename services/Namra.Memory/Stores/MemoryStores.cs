using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Memory.Options;
using Npgsql;
using StackExchange.Redis;

namespace Namra.Memory.Stores;

/// <summary>
/// The stores this memory service serves (in-memory always; SQLite, Redis and PostgreSQL when configured), each
/// connected and migrated before its first use. A store that cannot be reached fails calls with
/// <c>UNAVAILABLE</c> and is tried again on the next one; the service itself keeps serving.
/// </summary>
internal sealed class MemoryStores : IHostedService, IAsyncDisposable
{
    private readonly Dictionary<MemoryType, Entry> _stores = [];
    private readonly MemoryOptions _options;
    private readonly ILogger<MemoryStores> _logger;

    public MemoryStores(IOptions<MemoryOptions> options, TimeProvider timeProvider, ILogger<MemoryStores> logger)
    {
        _options = options.Value;
        _logger = logger;
        Add(new InMemoryStore(timeProvider, _options.MaxInMemoryRuns));
        if (!string.IsNullOrWhiteSpace(_options.SqlitePath))
        {
            Add(new SqliteMemoryStore(_options.SqlitePath, _options.StoreTimeout, timeProvider));
        }

        if (!string.IsNullOrWhiteSpace(_options.RedisConnectionString))
        {
            Add(new RedisMemoryStore(_options.RedisConnectionString, _options.StoreTimeout, timeProvider));
        }

        if (!string.IsNullOrWhiteSpace(_options.PostgresConnectionString))
        {
            Add(new PostgresMemoryStore(_options.PostgresConnectionString, _options.StoreTimeout, timeProvider));
        }

        Default = Contracts.MemoryTypeNames.Parse(_options.DefaultStore) is var named and not MemoryType.Unspecified ? named : MemoryType.InMemory;
    }

    /// <summary>The store for requests that name none, and for run records.</summary>
    public MemoryType Default { get; }

    /// <summary>True when the store is configured.</summary>
    public bool Serves(MemoryType type) => _stores.ContainsKey(type);

    /// <summary>The store of a type (the default when unspecified), initialized.</summary>
    public async Task<IMemoryStore> GetAsync(MemoryType type, CancellationToken cancellationToken)
    {
        var wanted = type == MemoryType.Unspecified ? Default : type;
        if (!_stores.TryGetValue(wanted, out var entry))
        {
            throw new NamraException(StatusCode.FailedPrecondition,
                $"This memory service has no {MemoryOptions.Name(wanted)} store; configure it ({Setting(wanted)}) or choose another memory.type.");
        }

        if (!entry.Ready)
        {
            await entry.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!entry.Ready)
                {
                    await Guard(entry.Store, () => entry.Store.InitializeAsync(cancellationToken)).ConfigureAwait(false);
                    entry.Ready = true;
                }
            }
            finally
            {
                entry.Gate.Release();
            }
        }

        return entry.Store;
    }

    /// <summary>
    /// Runs a store call, turning a backend that did not answer within the store timeout into <c>DEADLINE_EXCEEDED</c>
    /// naming the store (a retry would only wait as long again: callers do not retry it), and an unreachable one into
    /// <c>UNAVAILABLE</c> (worth retrying).
    /// </summary>
    public static async Task<T> Guard<T>(IMemoryStore store, Func<Task<T>> call)
    {
        try
        {
            // The whole call within the store timeout, however many statements it makes; one still running afterwards
            // ends at its own command timeout.
            return await call().WaitAsync(store.Timeout).ConfigureAwait(false);
        }
        catch (Exception exception) when (IsTimeout(exception))
        {
            var name = MemoryOptions.Name(store.Type);
            throw new NamraException(StatusCode.DeadlineExceeded,
                $"The {name} store did not answer within the store timeout (Namra:Memory:StoreTimeout): {FirstLine(exception.Message)}",
                [new Google.Rpc.ResourceInfo { ResourceType = "namra.memory.store", ResourceName = name, Description = "did not answer in time" }], exception);
        }
        catch (Exception exception) when (IsUnavailable(exception))
        {
            throw new NamraException(StatusCode.Unavailable,
                $"The {MemoryOptions.Name(store.Type)} store is unavailable ({exception.GetType().Name}: {FirstLine(exception.Message)}); retry later.", innerException: exception);
        }
    }

    /// <summary>Runs a store call that returns nothing; see <see cref="Guard{T}"/>.</summary>
    public static Task Guard(IMemoryStore store, Func<Task> call) => Guard(store, async () =>
    {
        await call().ConfigureAwait(false);
        return true;
    });

    private static bool IsTimeout(Exception? exception) => exception switch
    {
        null => false,
        TimeoutException => true, // RedisTimeoutException too
        NpgsqlException or InvalidOperationException => IsTimeout(exception.InnerException),
        _ => false,
    };

    private static bool IsUnavailable(Exception exception) => exception switch
    {
        RedisConnectionException or RedisTimeoutException or TimeoutException or System.Net.Sockets.SocketException or IOException => true,
        PostgresException postgres => postgres.IsTransient || postgres.SqlState.StartsWith("08", StringComparison.Ordinal) || postgres.SqlState.StartsWith("57P", StringComparison.Ordinal),
        NpgsqlException => true, // not a server's answer: the connection failed
        Microsoft.Data.Sqlite.SqliteException sqlite => sqlite.SqliteErrorCode is 5 or 6 or 10 or 13 or 14, // busy, locked, I/O error, disk full, cannot open
        InvalidOperationException { InnerException: { } inner } => IsUnavailable(inner),
        _ => false,
    };

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();

    private static string Setting(MemoryType type) => type switch
    {
        MemoryType.Sqlite => "Namra:Memory:SqlitePath",
        MemoryType.Redis => "Namra:Memory:RedisConnectionString",
        MemoryType.Postgres => "Namra:Memory:PostgresConnectionString",
        _ => "nothing to set",
    };

    private void Add(IMemoryStore store) => _stores[store.Type] = new Entry(store);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_stores.ContainsKey(Default))
        {
            throw new OptionsValidationException(MemoryOptions.SectionName, typeof(MemoryOptions),
                [$"Namra:Memory:DefaultStore is {_options.DefaultStore}, which is not configured: set {Setting(Default)}."]);
        }

        // Connect and migrate early, so the first request does not pay for it; a backend that is down is tried again later.
        foreach (var (type, _) in _stores)
        {
            try
            {
                await GetAsync(type, cancellationToken).ConfigureAwait(false);
            }
            catch (NamraException exception)
            {
                Log.StoreNotReady(_logger, MemoryOptions.Name(type), exception.Message);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var entry in _stores.Values)
        {
            if (entry.Store is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync().ConfigureAwait(false);
            }
            else if (entry.Store is IDisposable owned)
            {
                owned.Dispose();
            }

            entry.Gate.Dispose();
        }
    }

    private sealed class Entry(IMemoryStore store)
    {
        public IMemoryStore Store { get; } = store;
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public volatile bool Ready;
    }
}
