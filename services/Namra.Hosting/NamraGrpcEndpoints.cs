using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Namra.Hosting;

/// <summary>
/// What the network endpoints of Namra's services are mapped for
/// (<see cref="NamraHostingExtensions.MapNamraGrpcService"/>): each service's methods, bound once from its generated
/// <c>BindService</c> to the container's one instance of it, then called for every request.
/// </summary>
/// <remarks>
/// grpc-dotnet's own binding finds <c>BindService</c> by reflection, invokes it with a binder generic over the
/// service, and turns every method into a delegate by reflection; compiled ahead of time, each method's binding was
/// a generic virtual call the runtime had to resolve and instantiate, and the larger part of a NativeAOT server's
/// start. Here the binder is one non-generic type and every call is statically typed, so the compiler builds them
/// all. This type has no generated base class, so grpc-dotnet's binding and JSON transcoding's pass it by.
/// </remarks>
public sealed class NamraGrpcEndpoints
{
    private readonly Queue<Action<ServiceBinderBase>> _unmapped = new();

    /// <summary>Binds <paramref name="service"/>'s methods at the next mapping of this type.</summary>
    internal void Add(Clients.InProcessService service, IServiceProvider services)
    {
        var implementation = services.GetRequiredService(service.ServiceType);
        _unmapped.Enqueue(binder => service.Bind(binder, implementation));
    }

    internal void Bind(ServiceMethodProviderContext<NamraGrpcEndpoints> context)
    {
        var binder = new ContextBinder(context);
        while (_unmapped.TryDequeue(out var bind))
        {
            bind(binder);
        }
    }

    /// <summary>Adds each method <c>BindService</c> names to the endpoints, calling the handler it was given.</summary>
    private sealed class ContextBinder(ServiceMethodProviderContext<NamraGrpcEndpoints> context) : ServiceBinderBase
    {
        private static readonly IList<object> NoMetadata = [];

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            context.AddUnaryMethod(method, NoMetadata, (_, request, call) => handler(request, call));
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            context.AddServerStreamingMethod(method, NoMetadata, (_, request, stream, call) => handler(request, stream, call));
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            context.AddClientStreamingMethod(method, NoMetadata, (_, requests, call) => handler(requests, call));
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            context.AddDuplexStreamingMethod(method, NoMetadata, (_, requests, stream, call) => handler(requests, stream, call));
        }
    }
}

/// <summary>Gives grpc-dotnet the methods of the services added to <see cref="NamraGrpcEndpoints"/>.</summary>
internal sealed class NamraGrpcEndpointMethods(NamraGrpcEndpoints endpoints) : IServiceMethodProvider<NamraGrpcEndpoints>
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<NamraGrpcEndpoints> context) => endpoints.Bind(context);
}
