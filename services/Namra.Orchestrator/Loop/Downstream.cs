using Namra.Contracts;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// The services the run loop calls, through channels that retry <c>UNAVAILABLE</c> within each call's deadline. A
/// service that stays down, or answers with an error of its own, throws a <see cref="DownstreamException"/> naming it.
/// </summary>
internal sealed class Downstream(NamraServiceChannels channels)
{
    public ConfigService.ConfigServiceClient Config => new(channels.For(ServiceRoles.Config));

    public LlmGatewayService.LlmGatewayServiceClient LlmGateway => new(channels.For(ServiceRoles.LlmGateway));

    public ToolExecutorService.ToolExecutorServiceClient ToolExecutor => new(channels.For(ServiceRoles.ToolExecutor));

    public MemoryService.MemoryServiceClient Memory => new(channels.For(ServiceRoles.Memory));
}
