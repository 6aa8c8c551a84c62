using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Options;

namespace Namra.Hosting;

/// <summary>
/// Runs a Namra host and turns start-up failures (bad settings, a port in use) into one clear line on
/// standard error and exit code 2, instead of a stack trace.
/// </summary>
public static class NamraStartup
{
    /// <summary>Exit code when the process refuses to start.</summary>
    public const int StartupFailedExitCode = 2;

    /// <summary>
    /// How long after the host starts one full, compacting collection gives back to the system what start-up left
    /// behind: not at once, where it would hold up the first calls (a readiness probe among them) by about 30 ms, and
    /// not at the first collection under load either.
    /// </summary>
    public static readonly TimeSpan CompactionDelay = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Builds and runs the host until it is stopped (SIGTERM drains in-flight calls first). Nothing is collected until
    /// the host has started (<see cref="StartupWithoutCollections"/>); <see cref="CompactionDelay"/> later, one
    /// collection gives the memory start-up no longer uses back to the system.
    /// </summary>
    public static async Task<int> RunAsync(Func<WebApplication> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        StartupWithoutCollections.Begin();
        try
        {
            await using var app = build();
            app.Lifetime.ApplicationStarted.Register(() =>
            {
                StartupWithoutCollections.End();
                _ = CompactAfterStartAsync(app.Lifetime.ApplicationStopping);
            });
            await app.RunAsync().ConfigureAwait(false);
            return 0;
        }
        catch (Exception exception) when (OptionsFailures(exception) is { Count: > 0 } failures)
        {
            // Several sections can fail at once; .NET then wraps them in an AggregateException.
            foreach (var failure in failures)
            {
                var section = NamraSettings.SectionOf(failure.OptionsType) ?? failure.OptionsType.Name;
                await Console.Error.WriteLineAsync($"namra-server: refusing to start: invalid settings in {section}: {string.Join(" ", failure.Failures)}").ConfigureAwait(false);
            }

            return StartupFailedExitCode;
        }
        catch (IOException exception) when (exception.InnerException is SocketException or null && exception.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
        {
            await Console.Error.WriteLineAsync($"namra-server: refusing to start: {exception.Message} (set Namra__Host__GrpcPort / Namra__Host__HttpPort to free ports)").ConfigureAwait(false);
            return StartupFailedExitCode;
        }
        finally
        {
            StartupWithoutCollections.End();
        }
    }

    private static async Task CompactAfterStartAsync(CancellationToken stopping)
    {
        try
        {
            await Task.Delay(CompactionDelay, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    private static List<OptionsValidationException> OptionsFailures(Exception exception) => exception switch
    {
        OptionsValidationException single => [single],
        AggregateException many => [.. many.Flatten().InnerExceptions.OfType<OptionsValidationException>()],
        _ => [],
    };
}
