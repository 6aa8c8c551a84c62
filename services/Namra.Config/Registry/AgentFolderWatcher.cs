using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Config.Options;
using Namra.Config.Validation;

namespace Namra.Config.Registry;

/// <summary>
/// Loads the agents folder into the registry at start-up, and again whenever its files change (debounced).
/// Works with mounted Kubernetes ConfigMaps, whose files change by an atomic swap of a symlinked folder.
/// </summary>
internal sealed class AgentFolderWatcher(
    AgentRegistry registry,
    AgentLoader loader,
    IOptions<ConfigServiceOptions> options,
    TimeProvider timeProvider,
    ILogger<AgentFolderWatcher> logger) : BackgroundService
{
    private static readonly string[] Extensions = [".yaml", ".yml", ".toml"];

    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Debouncer? _debouncer;
    private FileSystemWatcher? _watcher;

    /// <summary>Completes once the folder has been loaded the first time.</summary>
    public Task Loaded => _loaded.Task;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var path = options.Value.AgentsPath;
        if (path.Length > 0)
        {
            // Watch before the first load, so a change made while it runs is not missed (at worst, read twice).
            _debouncer = new Debouncer(options.Value.ReloadDebounce, timeProvider);
            _watcher = new FileSystemWatcher(path)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size,
            };
            var debouncer = _debouncer;
            _watcher.Changed += (_, _) => debouncer.Signal();
            _watcher.Created += (_, _) => debouncer.Signal();
            _watcher.Deleted += (_, _) => debouncer.Signal();
            _watcher.Renamed += (_, _) => debouncer.Signal();
            _watcher.Error += (_, _) => debouncer.Signal(); // events were lost: a full reload is what we do anyway
            _watcher.EnableRaisingEvents = true;

            // The first load happens before the host reports started, so no call sees an empty registry.
            await ReloadAsync(cancellationToken).ConfigureAwait(false);
        }

        _loaded.TrySetResult();
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        _watcher?.Dispose();
        _debouncer?.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_debouncer is not { } debouncer)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await debouncer.WaitAsync(stoppingToken).ConfigureAwait(false);
                await ReloadAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                // A failed reload must not stop watching (nor the host): the last good definitions keep serving.
                Log.FolderReloadFailed(logger, exception, options.Value.AgentsPath);
                ConfigTelemetry.FolderReloads.Add(1, "error");
            }
        }
    }

    /// <summary>Reads every agent file of the folder and brings the registry in line with them.</summary>
    public async Task ReloadAsync(CancellationToken cancellationToken)
    {
        var path = options.Value.AgentsPath;
        try
        {
            var files = Directory.EnumerateFiles(path, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.Hidden })
                .Where(file => Extensions.Contains(Path.GetExtension(file), StringComparer.OrdinalIgnoreCase))
                .Where(file => !Path.GetRelativePath(path, file).Split(Path.DirectorySeparatorChar).Any(part => part.StartsWith('.')))
                .Order(StringComparer.Ordinal)
                .ToList();
            var loaded = new List<(string, AgentLoadResult)>(files.Count);
            foreach (var file in files)
            {
                AgentLoadResult result;
                try
                {
                    result = await loader.LoadFileAsync(file, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    // One file that breaks the loader must not keep the others from loading; it counts as
                    // invalid, so its last good version stays.
                    Log.FolderReloadFailed(logger, exception, file);
                    result = new AgentLoadResult(null, null,
                        [new AgentDiagnostic(DiagnosticSeverity.Error, DiagnosticCodes.FileUnreadable, "The file could not be loaded; the server's logs say why.", file, default, "", "")], "");
                }

                if (!result.IsValid)
                {
                    var first = result.Diagnostics.FirstOrDefault(d => d.Severity == DiagnosticSeverity.Error)?.ToString() ?? "";
                    Log.InvalidAgentFile(logger, file, first, result.Diagnostics.Count);
                }

                loaded.Add((file, result));
            }

            registry.SyncFolder(loaded);
            var valid = loaded.Count(l => l.Item2.IsValid);
            Log.FolderLoaded(logger, path, valid, loaded.Count - valid);
            ConfigTelemetry.FolderReloads.Add(1, "ok");
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            Log.FolderReloadFailed(logger, exception, path);
            ConfigTelemetry.FolderReloads.Add(1, "error");
        }
    }
}
