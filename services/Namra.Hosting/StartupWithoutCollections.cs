using System.Runtime;

namespace Namra.Hosting;

/// <summary>
/// Start-up without garbage collections. Almost everything a Namra process allocates while it starts stays alive
/// (configuration, the service container, the generic types a NativeAOT runtime builds as the container asks for them),
/// so a collection then frees nothing and only moves it: measured in a NativeAOT <c>namra run</c>, one compacting
/// collection of about 15 ms, a fifth of the time to the first provider request.
/// </summary>
/// <remarks>
/// The region ends by itself once <see cref="Budget"/> bytes are allocated; collections then go on as usual. It is
/// process-wide: a second <see cref="Begin"/> while one is open does nothing.
/// </remarks>
public static class StartupWithoutCollections
{
    /// <summary>What may be allocated before collections resume on their own, far above a start-up's few megabytes.</summary>
    public const long Budget = 64L * 1024 * 1024;

    /// <summary>Suspends collections until <see cref="End"/> or until <see cref="Budget"/> bytes are allocated.</summary>
    public static void Begin()
    {
        if (GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
        {
            return;
        }

        try
        {
            GC.TryStartNoGCRegion(Budget);
        }
        catch (InvalidOperationException)
        {
            // Another thread opened one first.
        }
        catch (ArgumentOutOfRangeException)
        {
            // A heap limit (DOTNET_GCHeapHardLimit, a container's memory) smaller than the budget: start as usual.
        }
    }

    /// <summary>Resumes collections, unless they already resumed.</summary>
    public static void End()
    {
        if (GCSettings.LatencyMode != GCLatencyMode.NoGCRegion)
        {
            return;
        }

        try
        {
            GC.EndNoGCRegion();
        }
        catch (InvalidOperationException)
        {
            // The budget ran out, or something collected, since the check: collections resumed already.
        }
    }
}
