using System.Runtime;
using Namra.Hosting;

namespace Namra.IntegrationTests;

[CollectionDefinition(nameof(StartupWithoutCollectionsTests), DisableParallelization = true)]
public sealed class StartupWithoutCollectionsTestGroup;

/// <summary>
/// Start-up without collections: nothing is collected while a host starts, and collections always come back, by
/// <see cref="StartupWithoutCollections.End"/> or by the budget running out. The region is the process's, so these
/// tests run alone.
/// </summary>
[Collection(nameof(StartupWithoutCollectionsTests))]
public sealed class StartupWithoutCollectionsTests : IDisposable
{
    public void Dispose() => StartupWithoutCollections.End();

    [Fact]
    public void WhileStarting_NothingIsCollected_ThenCollectionsResume()
    {
        StartupWithoutCollections.Begin();
        var collections = GC.CollectionCount(0);

        var kept = Allocate(8 * 1024 * 1024);

        Assert.Equal(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        Assert.Equal(collections, GC.CollectionCount(0));
        GC.KeepAlive(kept);

        StartupWithoutCollections.End();
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }

    [Fact]
    public void ABudgetUsedUp_EndsTheRegionByItself_AndEndingItAfterwardsIsHarmless()
    {
        StartupWithoutCollections.Begin();
        var collections = GC.CollectionCount(0);

        // Small objects, none kept: the region must end once the budget is used, not the process run out of memory.
        for (var allocated = 0L; allocated <= 4 * StartupWithoutCollections.Budget && GC.CollectionCount(0) == collections; allocated += 16 * 1024)
        {
            GC.KeepAlive(new byte[16 * 1024]);
        }

        Assert.True(GC.CollectionCount(0) > collections, "nothing was collected after four times the budget");
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        StartupWithoutCollections.End();
    }

    [Fact]
    public void BeginningTwice_OrEndingWithoutBeginning_IsHarmless()
    {
        StartupWithoutCollections.End();
        StartupWithoutCollections.Begin();
        StartupWithoutCollections.Begin();
        Assert.Equal(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        StartupWithoutCollections.End();
        StartupWithoutCollections.End();
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }

    // Many small objects, as a start-up allocates: one large array would go to the large object heap.
    private static List<byte[]> Allocate(long bytes)
    {
        var kept = new List<byte[]>();
        for (var allocated = 0L; allocated < bytes; allocated += 16 * 1024)
        {
            kept.Add(new byte[16 * 1024]);
        }

        return kept;
    }
}
