using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Namra.Contracts.V1;
using Namra.Hosting;
using Namra.Hosting.Clients;
using Namra.Server;

namespace Namra.Cli.Running;

/// <summary>
/// Where runs go: the five services embedded in this process (called directly, with no listener; conversations in
/// a SQLite file under the user's data folder), or a deployed orchestrator at a URL.
/// </summary>
internal sealed class AgentRunner : IAsyncDisposable
{
    private readonly IHost? _embedded;
    private readonly GrpcChannel? _channel;
    private readonly CallInvoker _invoker;

    private AgentRunner(IHost? embedded, GrpcChannel? channel, CallInvoker invoker)
    {
        _embedded = embedded;
        _channel = channel;
        _invoker = invoker;
    }

    public AgentService.AgentServiceClient Client => new(_invoker);

    /// <summary>The embedded services' container; null for a runner of a remote server.</summary>
    internal IServiceProvider? EmbeddedServices => _embedded?.Services;

    /// <summary>The SQLite file embedded runs keep conversations and run records in.</summary>
    public static string DataFile =>
        Path.Combine(Environment.GetEnvironmentVariable("NAMRA_DATA_DIR") is { Length: > 0 } folder ? folder
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "namra"),
            "memory.db");

    /// <summary>A deployed orchestrator; <c>NAMRA_API_KEY</c>, when set, goes with every call as a bearer token.</summary>
    public static AgentRunner Remote(string url)
    {
        var options = new GrpcChannelOptions { MaxReceiveMessageSize = 64 * 1024 * 1024 };
        if (Environment.GetEnvironmentVariable("NAMRA_API_KEY") is { Length: > 0 } key)
        {
            var bearer = CallCredentials.FromInterceptor((_, metadata) =>
            {
                metadata.Add("authorization", "Bearer " + key);
                return Task.CompletedTask;
            });
            options.Credentials = url.StartsWith("https:", StringComparison.OrdinalIgnoreCase)
                ? ChannelCredentials.Create(ChannelCredentials.SecureSsl, bearer)
                : ChannelCredentials.Create(ChannelCredentials.Insecure, bearer);
            options.UnsafeUseInsecureChannelCallCredentials = !url.StartsWith("https:", StringComparison.OrdinalIgnoreCase);
        }

        var channel = GrpcChannel.ForAddress(url, options);
        return new AgentRunner(null, channel, channel.CreateCallInvoker());
    }

    /// <summary>
    /// Starts every service in this process. Agents that the run calls as tools are looked for in
    /// <paramref name="agentFolder"/> (the folder of the file run), so a team of agents in one folder runs as it is.
    /// </summary>
    public static async Task<AgentRunner> StartEmbeddedAsync(CancellationToken cancellationToken, string? agentFolder = null)
    {
        // Nothing collected while the services start and the first run warms them: what they allocate stays alive.
        // Collections resume by themselves after StartupWithoutCollections.Budget bytes, in a long run or a chat.
        StartupWithoutCollections.Begin();

        // An empty builder: no appsettings.json read (or watched) from wherever the user stands, no web server.
        // Settings come from the environment (Namra__..., ANTHROPIC_BASE_URL) under the CLI's own below.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Production });
        builder.Configuration.AddEnvironmentVariables();
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["services"] = "all",
            ["Namra:Host:ShutdownTimeout"] = "00:00:02",
            ["Namra:Memory:SqlitePath"] = DataFile,
            ["Namra:Memory:DefaultStore"] = "sqlite",
            ["Namra:Orchestrator:MemoryStoreOverride"] = "sqlite",
            ["Namra:Orchestrator:RecoverRuns"] = "false",
            // The agent file is the user's own: it may read the user's environment, and name its key variable.
            ["Namra:Config:InlineVariables:0"] = "*",
            ["Namra:LlmGateway:AllowedKeyVariables:0"] = "*",
            ["Namra:Config:ReferencePath"] = agentFolder ?? "",
        });
        var app = NamraComposition.BuildInProcess(builder);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        return new AgentRunner(app, null, app.Services.GetRequiredService<NamraServiceChannels>().For("orchestrator"));
    }

    /// <summary>Streams a run's events to <paramref name="onEvent"/>; the first cancellation asks the run to stop and keeps reading to its end.</summary>
    public async Task<RunEvent?> StreamAsync(ExecuteStreamRequest request, Func<RunEvent, Task> onEvent, CancellationToken interrupt)
    {
        using var abort = new CancellationTokenSource();
        using var call = Client.ExecuteStream(request, cancellationToken: abort.Token);
        RunEvent? last = null;
        string? runId = null;
        await using var onInterrupt = interrupt.Register(() =>
        {
            if (Volatile.Read(ref runId) is { } id)
            {
                // Ask the run to stop: its last event still comes, with what it used.
                _ = Client.CancelRunAsync(new CancelRunRequest { RunId = id, Reason = "interrupted (Ctrl-C)" }).ResponseAsync.ContinueWith(_ => { }, TaskScheduler.Default);
            }
            else
            {
                abort.Cancel();
            }
        }).ConfigureAwait(false);
        try
        {
            await foreach (var item in call.ResponseStream.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                Volatile.Write(ref runId, item.Event.RunId);
                last = item.Event;
                await onEvent(item.Event).ConfigureAwait(false);
            }
        }
        catch (RpcException exception) when (exception.StatusCode == StatusCode.Cancelled && abort.IsCancellationRequested)
        {
            return null;
        }

        return last;
    }

    public async ValueTask DisposeAsync()
    {
        _channel?.Dispose();
        if (_embedded is not null)
        {
            await _embedded.StopAsync().ConfigureAwait(false);
            await ((IAsyncDisposable)_embedded).DisposeAsync().ConfigureAwait(false);
        }
    }
}
