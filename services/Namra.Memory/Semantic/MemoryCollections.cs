using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.VectorData;
using Namra.Memory.Stores;

namespace Namra.Memory.Semantic;

/// <summary>A remembered text as a record of a vector collection (<c>Microsoft.Extensions.VectorData</c>).</summary>
internal sealed class MemoryRecord
{
    /// <summary>Its identifier, unique in its namespace.</summary>
    [VectorStoreKey]
    public string Id { get; set; } = "";

    /// <summary>The text.</summary>
    [VectorStoreData]
    public string Text { get; set; } = "";

    /// <summary>Labels returned with it and usable in filters.</summary>
    [VectorStoreData]
    public Dictionary<string, string> Metadata { get; set; } = [];

    /// <summary>The embedding model its vector came from; vectors of other models are not compared with it.</summary>
    [VectorStoreData(IsIndexed = true)]
    public string Model { get; set; } = "";

    /// <summary>
    /// Its embedding, compared by cosine similarity. 1,536 numbers is OpenAI's <c>text-embedding-3-small</c>; a connector
    /// for a model of another size registers its collection with a definition of its own.
    /// </summary>
    [VectorStoreVector(1536, DistanceFunction = DistanceFunction.CosineSimilarity)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}

/// <summary>
/// Where the memory service keeps a namespace's memories, as a vector collection: the seam for vector databases. The
/// built-in <see cref="StoreMemoryCollections"/> keeps them in the session store the agent names, with exact search; a
/// connector (any <c>VectorStoreCollection</c> of <see cref="MemoryRecord"/>) registered in its place serves
/// <c>Remember</c> and <c>Recall</c> without a change to the service's calls or to the run loop, which only calls those.
/// </summary>
internal interface IMemoryCollections
{
    /// <summary>The collection of one tenant's namespace; <paramref name="store"/> is the session store the agent names.</summary>
    VectorStoreCollection<string, MemoryRecord> For(IMemoryStore store, string tenant, string space);
}

/// <summary>The built-in collections: each namespace in its session store, searched exactly (every memory compared).</summary>
internal sealed class StoreMemoryCollections(Microsoft.Extensions.Options.IOptions<Options.MemoryOptions> options) : IMemoryCollections
{
    public VectorStoreCollection<string, MemoryRecord> For(IMemoryStore store, string tenant, string space) =>
        new StoreMemoryCollection(store, tenant, space, options.Value.MaxMemoriesPerNamespace);
}

/// <summary>
/// One namespace of a session store as a vector collection. Search is exact cosine similarity over at most
/// <c>maxMemories</c> memories; filters are evaluated in this process (any expression over a <see cref="MemoryRecord"/>).
/// </summary>
internal sealed class StoreMemoryCollection(IMemoryStore store, string tenant, string space, int maxMemories) : VectorStoreCollection<string, MemoryRecord>
{
    public override string Name => space;

    public override async Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) =>
        (await store.MemoriesAsync(tenant, space, 1, cancellationToken).ConfigureAwait(false)).Count > 0;

    // A namespace exists once it holds a memory: nothing to create.
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public override async Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        foreach (var memory in await store.MemoriesAsync(tenant, space, maxMemories, cancellationToken).ConfigureAwait(false))
        {
            await store.ForgetAsync(tenant, space, memory.Id, cancellationToken).ConfigureAwait(false);
        }
    }

    public override async Task<MemoryRecord?> GetAsync(string key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default) =>
        await store.MemoryAsync(tenant, space, key, cancellationToken).ConfigureAwait(false) is { } memory ? Record(memory) : null;

    public override async IAsyncEnumerable<MemoryRecord> GetAsync(Expression<Func<MemoryRecord, bool>> filter, int top, FilteredRecordRetrievalOptions<MemoryRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        if (options?.OrderBy is not null)
        {
            throw new NotSupportedException("The built-in memory collections do not order records; they return them as stored.");
        }

        var matches = filter.Compile();
        foreach (var record in (await store.MemoriesAsync(tenant, space, maxMemories, cancellationToken).ConfigureAwait(false)).Select(Record).Where(matches)
            .Skip(options?.Skip ?? 0).Take(top))
        {
            yield return record;
        }
    }

    public override async Task DeleteAsync(string key, CancellationToken cancellationToken = default) =>
        await store.ForgetAsync(tenant, space, key, cancellationToken).ConfigureAwait(false);

    public override Task UpsertAsync(MemoryRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        return store.RememberAsync(tenant, space, new StoredMemory(record.Id, record.Text, record.Metadata, record.Model, record.Embedding.ToArray()), cancellationToken);
    }

    public override async Task UpsertAsync(IEnumerable<MemoryRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        foreach (var record in records)
        {
            await UpsertAsync(record, cancellationToken).ConfigureAwait(false);
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<MemoryRecord>> SearchAsync<TInput>(TInput searchValue, int top, VectorSearchOptions<MemoryRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        ReadOnlyMemory<float> query = searchValue switch
        {
            ReadOnlyMemory<float> vector => vector,
            float[] vector => vector,
            _ => throw new NotSupportedException($"The built-in memory collections search by a vector (ReadOnlyMemory<float> or float[]), not {typeof(TInput).Name}: embed the text first."),
        };
        var matches = options?.Filter?.Compile() ?? (_ => true);
        var memories = await store.MemoriesAsync(tenant, space, maxMemories, cancellationToken).ConfigureAwait(false);
        foreach (var (record, score) in memories
            .Where(m => m.Embedding.Length == query.Length)
            .Select(Record)
            .Where(matches)
            .Select(r => (Record: r, Score: Similarity.Cosine(query.Span, r.Embedding.Span)))
            .Where(p => options?.ScoreThreshold is not { } least || p.Score >= least)
            .OrderByDescending(p => p.Score)
            .Skip(options?.Skip ?? 0)
            .Take(top))
        {
            yield return new VectorSearchResult<MemoryRecord>(record, score);
        }
    }

    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;
    }

    private static MemoryRecord Record(StoredMemory memory) => new()
    {
        Id = memory.Id,
        Text = memory.Text,
        Metadata = new Dictionary<string, string>(memory.Metadata, StringComparer.Ordinal),
        Model = memory.Model,
        Embedding = memory.Embedding,
    };
}
