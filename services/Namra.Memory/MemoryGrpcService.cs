using Namra.Contracts.V1;

namespace Namra.Memory;

/// <summary>
/// The <c>namra.v1.MemoryService</c> endpoint. Registered so clients, health and reflection see the whole API now;
/// every call answers UNIMPLEMENTED until the service's own work lands.
/// </summary>
internal sealed class MemoryGrpcService : MemoryService.MemoryServiceBase;
