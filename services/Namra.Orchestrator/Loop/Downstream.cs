using Grpc.Core;
using Namra.Contracts;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// The services the run loop calls, through channels that retry <c>UNAVAILABLE</c> within the run's deadline. A
/// service that stays down, or answers with an error of its own, becomes a <see cref="DownstreamException"/>
/// naming it.
/// </summary>
internal sealed class Downstream(NamraServiceChannels channels)
{
    public ConfigService.ConfigServiceClient Config => new(channels.For(ServiceRoles.Config));

    public LlmGatewayService.LlmGatewayServiceClient LlmGateway => new(channels.For(ServiceRoles.LlmGateway));

    public ToolExecutorService.ToolExecutorServiceClient ToolExecutor => new(channels.For(ServiceRoles.ToolExecutor));

    public MemoryService.MemoryServiceClient Memory => new(channels.For(ServiceRoles.Memory));

    /// <summary>
    /// Runs a call to <paramref name="service"/>, naming it in any failure. A call cancelled by anything but
    /// <paramref name="cancellationToken"/> (the service went away mid-call) is a failure of the service.
    /// </summary>
    public static async Task<T> CallAsync<T>(string service, Func<Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RpcException exception) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DownstreamException(service, exception);
        }
    }
}

/// <summary>A downstream service failed; its status is kept, its name added to the message.</summary>
internal sealed class DownstreamException(string service, RpcException inner)
    : NamraException(
        inner.StatusCode switch
        {
            StatusCode.OK or StatusCode.Unknown => StatusCode.Internal,
            StatusCode.Cancelled => StatusCode.Unavailable, // not by us: the service dropped the call
            _ => inner.StatusCode,
        },
        inner.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled
            ? $"The {service} service is unavailable: {inner.Status.Detail}"
            : inner.StatusCode == StatusCode.DeadlineExceeded
                ? inner.Status.Detail is "" or "Deadline Exceeded"
                    ? $"The {service} service did not answer before the run's deadline."
                    : $"The {service} service ran out of time: {inner.Status.Detail}"
                : $"The {service} service failed: {inner.Status.Detail}",
        innerException: inner)
{
    /// <summary>The service's role name.</summary>
    public string Service { get; } = service;

    /// <summary>The detail that names the service at fault, for a run's error.</summary>
    public Google.Rpc.ResourceInfo Resource => ResourceOf(Service, $"failed with {StatusCode}");

    /// <summary>A detail naming <paramref name="service"/> (a role) and what went wrong with it.</summary>
    public static Google.Rpc.ResourceInfo ResourceOf(string service, string description) => new()
    {
        ResourceType = service switch
        {
            ServiceRoles.Memory => MemoryService.Descriptor.FullName,
            ServiceRoles.LlmGateway => LlmGatewayService.Descriptor.FullName,
            ServiceRoles.ToolExecutor => ToolExecutorService.Descriptor.FullName,
            _ => ConfigService.Descriptor.FullName,
        },
        ResourceName = service,
        Description = description,
    };
}
