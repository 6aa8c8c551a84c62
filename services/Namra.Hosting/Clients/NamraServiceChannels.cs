using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.Options;
using Namra.Hosting.Errors;
using Namra.Hosting.Roles;

namespace Namra.Hosting.Clients;

/// <summary>
/// Where this process finds the other Namra services; section <c>Namra:Services</c>. An address is a URL such
/// as <c>http://llm-gateway:50051</c>, or <c>dns:///llm-gateway.namra.svc:50051</c> to balance calls across every
/// replica a headless Service resolves to. A service hosted in this process needs no address.
/// </summary>
public sealed class NamraServiceAddresses
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Namra:Services";

    /// <summary>The config service.</summary>
    public string? Config { get; set; }

    /// <summary>The LLM gateway.</summary>
    public string? LlmGateway { get; set; }

    /// <summary>The tool executor.</summary>
    public string? ToolExecutor { get; set; }

    /// <summary>The memory service.</summary>
    public string? Memory { get; set; }
}

/// <summary>
/// How this process calls each service, made once and shared. A service hosted in this process is called
/// directly (<see cref="InProcessCallInvoker"/>); the others over the network, through channels that retry
/// <c>UNAVAILABLE</c> (a replica restarting, a connection refused) with backoff, within each call's deadline: unary
/// calls by <see cref="UnavailableRetry"/>, server-streaming calls by the channel's own retry policy.
/// </summary>
public sealed class NamraServiceChannels(
    IOptions<NamraServiceAddresses> addresses,
    NamraRoles roles,
    IEnumerable<InProcessService> inProcessServices,
    NamraEndpoints endpoints,
    IServiceProvider services,
    TimeProvider timeProvider) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<(CallInvoker Invoker, GrpcChannel? Channel)>> _channels = new(StringComparer.Ordinal);
    private readonly UnavailableRetry _retry = new(timeProvider);

    /// <summary>
    /// How to call a service, by role name (<c>config</c>, <c>llm-gateway</c>, <c>tool-executor</c>, <c>memory</c>; and
    /// <c>orchestrator</c>, only where this process hosts it).
    /// </summary>
    /// <exception cref="NamraException">With <c>FAILED_PRECONDITION</c> when the service has no address and is not hosted here.</exception>
    public CallInvoker For(string role)
    {
        ArgumentNullException.ThrowIfNull(role);
        return _channels.GetOrAdd(role, r => new Lazy<(CallInvoker, GrpcChannel?)>(() => Create(r))).Value.Invoker;
    }

    private (CallInvoker Invoker, GrpcChannel? Channel) Create(string role)
    {
        var (configured, hostedHere, key) = role switch
        {
            "config" => (addresses.Value.Config, roles.Config, nameof(NamraServiceAddresses.Config)),
            "llm-gateway" => (addresses.Value.LlmGateway, roles.LlmGateway, nameof(NamraServiceAddresses.LlmGateway)),
            "tool-executor" => (addresses.Value.ToolExecutor, roles.ToolExecutor, nameof(NamraServiceAddresses.ToolExecutor)),
            "memory" => (addresses.Value.Memory, roles.Memory, nameof(NamraServiceAddresses.Memory)),
            "orchestrator" => (null, roles.Orchestrator, "Orchestrator"),
            _ => throw new ArgumentOutOfRangeException(nameof(role), role, "Not a service this process calls."),
        };
        if (string.IsNullOrWhiteSpace(configured) && hostedHere && inProcessServices.FirstOrDefault(s => s.Role == role) is { } local)
        {
            // A service hosted here is called directly: its handler, its error mapping, no serialization, no HTTP.
            return (new InProcessCallInvoker(services, local), null);
        }

        var address = !string.IsNullOrWhiteSpace(configured) ? configured
            : hostedHere ? endpoints.GrpcAddress.ToString()
            : role == "orchestrator" ? throw new NamraException(StatusCode.FailedPrecondition,
                "This process does not host the orchestrator; other services never call it, so it has no address setting.")
            : throw new NamraException(StatusCode.FailedPrecondition,
                $"This process does not host the {role} service and has no address for it: set {NamraServiceAddresses.SectionName}:{key}.");
        var balanced = address.StartsWith("dns:", StringComparison.OrdinalIgnoreCase);
        var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            Credentials = balanced ? ChannelCredentials.Insecure : null,
            HttpHandler = new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                KeepAlivePingDelay = TimeSpan.FromSeconds(60),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
                ConnectTimeout = TimeSpan.FromSeconds(5),
            },
            MaxReceiveMessageSize = 64 * 1024 * 1024,
            ServiceConfig = new ServiceConfig
            {
                LoadBalancingConfigs = { balanced ? new RoundRobinConfig() : new PickFirstConfig() },
                MethodConfigs = { UnavailableRetry.StreamingPolicy() },
            },
        });
        return (channel.CreateCallInvoker().Intercept(_retry), channel);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var entry in _channels.Values)
        {
            if (entry.IsValueCreated)
            {
                entry.Value.Channel?.Dispose();
            }
        }
    }
}
