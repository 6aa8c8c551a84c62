using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Client;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.ToolExecutor.Options;
using Namra.Hosting.Secrets;

namespace Namra.ToolExecutor.Tools;

/// <summary>How to reach one MCP server, as an agent entry configures it; equal settings share one session.</summary>
internal sealed record McpServerSettings(
    string Transport,
    string Command,
    IReadOnlyList<string> Arguments,
    IReadOnlyList<KeyValuePair<string, string>> Environment,
    string Url,
    IReadOnlyList<KeyValuePair<string, string>> Headers)
{
    /// <summary>Names the server in messages without its secrets.</summary>
    public string Label => Transport == "http" ? Url : Command;

    /// <summary>Identity of the session: the settings as written, before <c>${VAR}</c> is resolved.</summary>
    public string Key { get; } = JsonSerializer.Serialize(new McpServerIdentity(Transport, Command, Arguments, Environment, Url, Headers), InstanceKeys.Default.McpServerIdentity);

    public static McpServerSettings From(ToolConfig config)
    {
        var mcp = config.Mcp ?? new McpToolSettings();
        static IReadOnlyList<KeyValuePair<string, string>> Pairs(IDictionary<string, string> map) => [.. map.OrderBy(p => p.Key, StringComparer.Ordinal)];
        return new McpServerSettings(
            mcp.Transport.Length > 0 ? mcp.Transport : "stdio",
            mcp.Command,
            [.. mcp.Args],
            Pairs(mcp.Env),
            mcp.Url,
            Pairs(mcp.Headers));
    }
}

/// <summary>One connected MCP server.</summary>
internal sealed class McpSession(McpClient client, TimeProvider timeProvider) : IAsyncDisposable
{
    public McpClient Client => client;

    public long LastUsed { get; set; } = timeProvider.GetTimestamp();

    public ValueTask DisposeAsync() => client.DisposeAsync();
}

/// <summary>
/// The MCP servers this tool executor has open, one per distinct settings, shared by concurrent calls. A stdio
/// server gets only a minimal environment plus its entry's <c>env</c> (resolved here, at start); sessions idle
/// longer than <see cref="ToolExecutorOptions.McpIdleTimeout"/> are closed, and at most
/// <see cref="ToolExecutorOptions.MaxMcpSessions"/> are open at once.
/// </summary>
internal sealed class McpSessions(
    IHttpClientFactory httpClients,
    IOptions<ToolExecutorOptions> options,
    TimeProvider timeProvider,
    ILoggerFactory loggerFactory,
    SecretStore? secrets = null) : IAsyncDisposable
{
    /// <summary>The named HTTP client for streamable HTTP servers.</summary>
    public const string HttpClientName = "namra-mcp";

    private readonly SharedInstances<McpSession> _sessions = new();

    public async Task<McpSession> GetAsync(McpServerSettings server, CancellationToken cancellationToken)
    {
        await EvictIdleAsync().ConfigureAwait(false);
        McpSession session;
        try
        {
            session = await _sessions.GetAsync(server.Key, () => ConnectAsync(server), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new NamraException(Grpc.Core.StatusCode.FailedPrecondition,
                $"The MCP server '{server.Label}' could not be started or reached: {exception.Message}");
        }

        session.LastUsed = timeProvider.GetTimestamp();
        return session;
    }

    /// <summary>Drops a session that failed, so the next call starts the server again.</summary>
    public void Forget(McpServerSettings server, McpSession session) => _sessions.Forget(server.Key, session);

    private async Task<McpSession> ConnectAsync(McpServerSettings server)
    {
        if (_sessions.Count > options.Value.MaxMcpSessions)
        {
            throw new InvalidOperationException($"{options.Value.MaxMcpSessions} MCP servers are already open (Namra:ToolExecutor:MaxMcpSessions).");
        }

        IClientTransport transport = server.Transport == "http"
            ? new HttpClientTransport(
                new HttpClientTransportOptions
                {
                    Endpoint = new Uri(server.Url),
                    TransportMode = HttpTransportMode.StreamableHttp,
                    Name = server.Url,
                    AdditionalHeaders = server.Headers.ToDictionary(h => h.Key, h => VariableReferences.Expand(h.Value, (secrets ?? SecretStore.EnvironmentOnly).Resolve)),
                    ConnectionTimeout = options.Value.McpStartTimeout,
                },
                httpClients.CreateClient(HttpClientName),
                loggerFactory,
                ownsHttpClient: true)
            : new StdioClientTransport(
                new StdioClientTransportOptions
                {
                    Command = server.Command,
                    Arguments = [.. server.Arguments],
                    Name = server.Command,
                    InheritEnvironmentVariables = false,
                    EnvironmentVariables = Environment(server),
                    ShutdownTimeout = TimeSpan.FromSeconds(2),
                },
                loggerFactory);

        // Starting the server is not any one call's work: it is bounded by its own timeout, not by the first caller.
        using var start = new CancellationTokenSource(options.Value.McpStartTimeout);
        var client = await McpClient.CreateAsync(
            transport,
            new McpClientOptions
            {
                ClientInfo = new ModelContextProtocol.Protocol.Implementation { Name = "namra-tool-executor", Version = typeof(McpSessions).Assembly.GetName().Version?.ToString() ?? "0" },
                InitializationTimeout = options.Value.McpStartTimeout,
            },
            loggerFactory,
            start.Token).ConfigureAwait(false);
        return new McpSession(client, timeProvider);
    }

    private Dictionary<string, string?> Environment(McpServerSettings server)
    {
        var environment = StdioClientTransportOptions.GetDefaultEnvironmentVariables();
        foreach (var (name, value) in server.Environment)
        {
            environment[name] = VariableReferences.Expand(value, (secrets ?? SecretStore.EnvironmentOnly).Resolve);
        }

        return environment;
    }

    private async Task EvictIdleAsync()
    {
        foreach (var session in _sessions.Take(session => timeProvider.GetElapsedTime(session.LastUsed) > options.Value.McpIdleTimeout))
        {
            await session.DisposeAsync().ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => _sessions.DisposeAsync();
}
