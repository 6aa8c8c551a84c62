using Namra.Contracts.V1;

namespace Namra.Orchestrator;

/// <summary>
/// The <c>namra.v1.AgentService</c> endpoint. Registered so clients, health and reflection see the whole API now;
/// every call answers UNIMPLEMENTED until the service's own work lands.
/// </summary>
internal sealed class AgentGrpcService : AgentService.AgentServiceBase;
