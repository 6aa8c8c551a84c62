using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;

namespace Namra.IntegrationTests;

/// <summary>How a failed call between services is worded: the service named once, the request's own errors as they came.</summary>
public sealed class DownstreamExceptionTests
{
    [Fact]
    public void AFailureAnotherServiceAlreadyNamed_KeepsItsWords_AndItsResource()
    {
        // The orchestrator answered that the memory service is down; the CLI calling the orchestrator says so once.
        var fromOrchestrator = Failure(StatusCode.Unavailable, "The memory service is unavailable: restarting",
            new Google.Rpc.ResourceInfo { ResourceType = "namra.v1.MemoryService", ResourceName = "memory" });

        var failure = DownstreamException.From("orchestrator", AgentService.Descriptor, fromOrchestrator);

        Assert.Equal((StatusCode.Unavailable, "The memory service is unavailable: restarting"), (failure.StatusCode, failure.Status.Detail));
        Assert.Equal("memory", Assert.Single(RpcDetails.Of<Google.Rpc.ResourceInfo>(failure)).ResourceName);
        Assert.Equal("orchestrator", failure.Service);
    }

    [Fact]
    public void AnAnswerAboutTheRequest_KeepsItsCodeMessageAndDetails()
    {
        var notFound = Failure(StatusCode.NotFound, "No run record 'r-1'.", new Google.Rpc.ResourceInfo { ResourceType = "namra.v1.Run", ResourceName = "r-1" });

        var failure = DownstreamException.From("memory", MemoryService.Descriptor, notFound);

        Assert.Equal((StatusCode.NotFound, "No run record 'r-1'."), (failure.StatusCode, failure.Status.Detail));
        Assert.Equal("namra.v1.Run", Assert.Single(RpcDetails.Of<Google.Rpc.ResourceInfo>(failure)).ResourceType);
    }

    [Theory]
    [InlineData(StatusCode.Unavailable, StatusCode.Unavailable, "The memory service is unavailable: gone")]
    [InlineData(StatusCode.Cancelled, StatusCode.Unavailable, "The memory service is unavailable: gone")]
    [InlineData(StatusCode.Unknown, StatusCode.Internal, "The memory service failed: gone")]
    [InlineData(StatusCode.DeadlineExceeded, StatusCode.DeadlineExceeded, "The memory service ran out of time: gone")]
    public void AServiceThatFailed_IsNamed_WithAResourceInfo(StatusCode answered, StatusCode code, string message)
    {
        var failure = DownstreamException.From("memory", MemoryService.Descriptor, new RpcException(new Status(answered, "gone")));

        Assert.Equal((code, message), (failure.StatusCode, failure.Status.Detail));
        var resource = Assert.Single(RpcDetails.Of<Google.Rpc.ResourceInfo>(failure));
        Assert.Equal(("namra.v1.MemoryService", "memory"), (resource.ResourceType, resource.ResourceName));
    }

    private static RpcException Failure(StatusCode code, string message, Google.Rpc.ResourceInfo resource) =>
        new Google.Rpc.Status { Code = (int)code, Message = message, Details = { Any.Pack(resource) } }.ToRpcException();
}
