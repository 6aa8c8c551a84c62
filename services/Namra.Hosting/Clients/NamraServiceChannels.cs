using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.Configuration;
using Namra.Hosting.Errors;
using Namra.Hosting.Roles;

namespace Namra.Hosting.Clients;

/// <summary>
/// How this process calls each service, made once and shared. A service hosted in this process is called
/// directly (<see cref="InProcessCallInvoker"/>); the others over the network, through channels that retry
/// <c>UNAVAILABLE</c> (a replica restarting, a connection refused) with backoff, within each call's deadline
/// (<see cref="UnavailableRetry"/>). Either way a call that fails throws a <see cref="DownstreamException"/> naming
/// the service (<see cref="DownstreamFailures"/>).
/// </summary>
public sealed class NamraServiceChannels(
    IConfiguration configuration,
    NamraRoles roles,
    IEnumerable<InProcessService> inProcessServices,
    NamraEndpoints endpoints,
    IServiceProvider services,
    Trust.ServiceTrust trust,
    TimeProvider timeProvider) : IDisposable
{
    /// <summary>
    /// Where this process finds the services it does not host: a URL per role's address key, such as
    /// <c>Namra:Services:LlmGateway = http://llm-gateway:50051</c>, or <c>dns:///llm-gateway.namra.svc:50051</c> to balance
    /// calls across every replica a headless Service resolves to. A service hosted in this process needs no address.
    /// </summary>
    public const string SectionName = "Namra:Services";

    private readonly ConcurrentDictionary<string, Lazy<(CallInvoker Invoker, GrpcChannel? Channel)>> _channels = new(StringComparer.Ordinal);
    private readonly UnavailableRetry _retry = new(timeProvider, roles.Known.Select(role => role.Service));

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
        var known = roles.Find(role) ?? throw new ArgumentOutOfRangeException(nameof(role), role, "Not a service this build knows.");
        var failures = new DownstreamFailures(known);
        var key = known.AddressKey;
        var (configured, hostedHere) = (configuration.GetSection(SectionName)[key], roles.Hosts(role));
        if (string.IsNullOrWhiteSpace(configured) && hostedHere && inProcessServices.FirstOrDefault(s => s.Role == role) is { } local)
        {
            // A service hosted here is called directly: its handler, its error mapping, no serialization, no HTTP.
            return (new InProcessCallInvoker(services, local).Intercept(failures), null);
        }

        var address = !string.IsNullOrWhiteSpace(configured) ? configured
            : hostedHere ? endpoints.GrpcAddress.ToString()
            : throw new NamraException(StatusCode.FailedPrecondition,
                $"This process does not host the {role} service and has no address for it: set {SectionName}:{key}.");
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
            // A refused connection is tried again on UnavailableRetry's schedule (50 ms doubling to 1 s), not gRPC's
            // default (1 s doubling to 2 min): a replica back within a second is found by the call's next attempt, where
            // every attempt made during the channel's own wait would fail at once.
            InitialReconnectBackoff = TimeSpan.FromMilliseconds(50),
            MaxReconnectBackoff = TimeSpan.FromSeconds(1),
            ServiceConfig = new ServiceConfig
            {
                LoadBalancingConfigs = { balanced ? new RoundRobinConfig() : new PickFirstConfig() },
            },
        });
        var invoker = channel.CreateCallInvoker().Intercept(_retry);
        if (trust.Enabled)
        {
            // Each call carries this process's token for the service (Trust.ServiceTrust).
            invoker = invoker.Intercept(metadata =>
            {
                metadata.Add(Trust.ServiceTrust.Header, trust.TokenFor(role));
                return metadata;
            });
        }

        return (invoker.Intercept(failures), channel);
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
