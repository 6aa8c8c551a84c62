using Namra.Hosting.Roles;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Namra.Hosting;
using Namra.Orchestrator.Loop;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator;

/// <summary>Registers and maps the orchestrator on a Namra host.</summary>
public static class OrchestratorHostingExtensions
{
    /// <summary>The role: its name, the key of its address, its gRPC service, how it is added and mapped.</summary>
    public static NamraRole Role { get; } = new(Contracts.ServiceRoles.Orchestrator, "Orchestrator", () => Contracts.V1.AgentService.Descriptor, builder => builder.AddOrchestrator(), app => app.MapOrchestrator());

    /// <summary>Adds the orchestrator: options, the run loop and its downstream clients.</summary>
    public static IHostApplicationBuilder AddOrchestrator(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddNamraSettings<OrchestratorOptions, OrchestratorOptionsValidator>(OrchestratorOptions.SectionName)
            .Bind(builder.Configuration.GetSection(OrchestratorOptions.SectionName))
            .Validate(options => !options.Jwt.Enabled || options.Jwt.Audience is { Length: > 0 }, "Namra:Orchestrator:Jwt:Audience: name the audience tokens must be for (with Jwt:Authority).");
        builder.Services.AddSingleton<Downstream>();
        builder.Services.AddSingleton<ActiveRuns>();
        builder.Services.AddSingleton<ResolvedAgents>();
        builder.Services.AddSingleton<Replica>();
        builder.Services.AddSingleton<ModelTurns>();
        builder.Services.AddSingleton<ChildRuns>();
        builder.Services.AddSingleton<RunMemory>();
        builder.Services.AddSingleton<RunCancellation>();
        builder.Services.AddSingleton<ToolCalls>();
        builder.Services.AddSingleton<RunLoop>();
        builder.Services.AddSingleton<RunRecovery>();
        builder.Services.AddSingleton<RunApprovals>();
        Microsoft.Extensions.DependencyInjection.Extensions.ServiceCollectionDescriptorExtensions.TryAddSingleton<ArgumentValidator>(builder.Services);
        builder.Services.AddHostedService(services => services.GetRequiredService<RunRecovery>());
        builder.Services.AddHostedService<RunHandOver>();
        builder.Services.AddSingleton<Access.AccessKeys>();
        builder.Services.AddSingleton<Access.AccessInterceptor>();
        builder.Services.AddSingleton<Access.TenantLimits>();
        builder.Services.AddSingleton<Access.TenantQuotas>();
        builder.Services.AddSingleton<Access.BearerTokens>();
        builder.Services.AddSingleton<Access.AuditLog>();
        // Tokens are validated by the JwtBearer handler when the access interceptor asks it (no authentication middleware).
        builder.Services.AddAuthentication().AddJwtBearer();
        builder.Services.AddOptions<Microsoft.AspNetCore.Authentication.JwtBearer.JwtBearerOptions>(Microsoft.AspNetCore.Authentication.JwtBearer.JwtBearerDefaults.AuthenticationScheme)
            .Configure<IOptions<OrchestratorOptions>>((bearer, orchestrator) =>
            {
                var jwt = orchestrator.Value.Jwt;
                bearer.Authority = jwt.Authority;
                bearer.Audience = jwt.Audience;
                bearer.RequireHttpsMetadata = jwt.RequireHttpsMetadata;
                bearer.MapInboundClaims = false;
                bearer.TokenValidationParameters.ClockSkew = TimeSpan.FromSeconds(30);
            });
        // Callers in this process (the CLI's embedded mode) reach the API directly; API keys guard the network only.
        builder.Services.AddNamraGrpcService<AgentGrpcService, Contracts.V1.AgentService.AgentServiceBase>(Contracts.ServiceRoles.Orchestrator, Contracts.V1.AgentService.BindService);
        // REST for the methods with google.api.http rules (only the public API has them), on the HTTP port; the
        // other roles do without transcoding and MVC's assemblies.
        builder.Services.AddGrpc().AddJsonTranscoding();
        TranscodeOnlyThePublicApi(builder.Services);
        builder.Services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions<AgentGrpcService>>(grpc => grpc.Interceptors.Add<Access.AccessInterceptor>());
        // Errors are written as google.rpc.Status JSON, whose details need their types known.
        builder.Services.PostConfigure<Microsoft.AspNetCore.Grpc.JsonTranscoding.GrpcJsonTranscodingOptions>(transcoding =>
            transcoding.TypeRegistry = Google.Protobuf.Reflection.TypeRegistry.FromFiles(
                Google.Rpc.ErrorDetailsReflection.Descriptor, Contracts.V1.CommonReflection.Descriptor));
        return builder;
    }

    /// <summary>
    /// JSON transcoding registers itself for every gRPC service a host maps, and at start it builds each one's
    /// descriptor and binds each method to look for REST rules; only the public API has any. Registered for
    /// <see cref="AgentGrpcService"/> alone, it leaves health and reflection alone (a few milliseconds of a start).
    /// </summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("AOT", "IL3050", Justification = "The closed type is named in NativeAot.Services.rd.xml, which NativeAotServiceDirectivesTests keeps complete.")]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2055", Justification = "As above: the closed type and its constructor are kept by the directives.")]
    internal static void TranscodeOnlyThePublicApi(IServiceCollection services)
    {
        var everyService = services.SingleOrDefault(service => service.ServiceType == typeof(Grpc.AspNetCore.Server.Model.IServiceMethodProvider<>)
            && service.ImplementationType is { IsGenericTypeDefinition: true, Name: "JsonTranscodingServiceMethodProvider`1" });
        if (everyService?.ImplementationType is not { } provider)
        {
            return; // Another version of the package: transcoding then looks at every service, slower but right.
        }

        services.Remove(everyService);
        services.AddSingleton(typeof(Grpc.AspNetCore.Server.Model.IServiceMethodProvider<AgentGrpcService>), provider.MakeGenericType(typeof(AgentGrpcService)));
    }

    /// <summary>Maps <c>namra.v1.AgentService</c>.</summary>
    public static WebApplication MapOrchestrator(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseStrictJsonBodies();
        app.MapGrpcService<AgentGrpcService>();
        app.MapGet(OpenApiDocument.Path, new Microsoft.AspNetCore.Http.RequestDelegate(OpenApiDocument.Serve));
        return app;
    }
}
