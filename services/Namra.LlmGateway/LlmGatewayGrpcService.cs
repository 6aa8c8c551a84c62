using Namra.Contracts.V1;

namespace Namra.LlmGateway;

/// <summary>
/// The <c>namra.v1.LlmGatewayService</c> endpoint. Registered so clients, health and reflection see the whole API now;
/// every call answers UNIMPLEMENTED until the service's own work lands.
/// </summary>
internal sealed class LlmGatewayGrpcService : LlmGatewayService.LlmGatewayServiceBase;
