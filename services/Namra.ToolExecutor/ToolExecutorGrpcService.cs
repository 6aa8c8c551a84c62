using Namra.Contracts.V1;

namespace Namra.ToolExecutor;

/// <summary>
/// The <c>namra.v1.ToolExecutorService</c> endpoint. Registered so clients, health and reflection see the whole API now;
/// every call answers UNIMPLEMENTED until the service's own work lands.
/// </summary>
internal sealed class ToolExecutorGrpcService : ToolExecutorService.ToolExecutorServiceBase;
