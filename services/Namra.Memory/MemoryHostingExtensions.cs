using Namra.Hosting.Roles;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Namra.Hosting;
using Namra.Memory.Options;
using Namra.Memory.Stores;

namespace Namra.Memory;

/// <summary>Registers and maps the memory service on a Namra host.</summary>
public static class MemoryHostingExtensions
{
    /// <summary>The role: its name, the key of its address, its gRPC service, how it is added and mapped.</summary>
    public static NamraRole Role { get; } = new(Contracts.ServiceRoles.Memory, "Memory", () => Contracts.V1.MemoryService.Descriptor, builder => builder.AddMemory(), app => app.MapMemory())
    {
        // Called from other processes by these roles only (with a service key, others are refused).
        CalledBy = [Contracts.ServiceRoles.Orchestrator],
    };

    /// <summary>Adds the memory service: options, its stores (connected and migrated at start) and the embedder.</summary>
    public static IHostApplicationBuilder AddMemory(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddNamraSettings<MemoryOptions, MemoryOptionsValidator>(MemoryOptions.SectionName)
            .Bind(builder.Configuration.GetSection(MemoryOptions.SectionName));
        builder.Services.AddSingleton<MemoryStores>();
        builder.Services.AddHostedService(services => services.GetRequiredService<MemoryStores>());
        builder.Services.AddSingleton<Embedder>();
        // Where namespaces of memories are kept and searched: the session stores, unless a vector database connector is registered first.
        Microsoft.Extensions.DependencyInjection.Extensions.ServiceCollectionDescriptorExtensions.TryAddSingleton<Semantic.IMemoryCollections, Semantic.StoreMemoryCollections>(builder.Services);
        // Calls from this process (the orchestrator, the memory service's embedder) go straight to the handler.
        builder.Services.AddNamraGrpcService<MemoryGrpcService, Namra.Contracts.V1.MemoryService.MemoryServiceBase>(Contracts.ServiceRoles.Memory, Namra.Contracts.V1.MemoryService.BindService);
        return builder;
    }

    /// <summary>Maps <c>namra.v1.MemoryService</c>.</summary>
    public static WebApplication MapMemory(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapNamraGrpcService<MemoryGrpcService>();
        return app;
    }
}
