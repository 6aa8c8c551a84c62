using System.Diagnostics.CodeAnalysis;
using System.Net;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Hosting.Errors;
using Namra.Hosting.Options;
using Namra.Hosting.Roles;
using Namra.Hosting.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Namra.Hosting;

/// <summary>
/// Namra's service defaults, shared by every role: Kestrel endpoints, OpenTelemetry (OTLP and the Prometheus scrape),
/// gRPC health and reflection, error mapping, validated options and graceful shutdown.
/// </summary>
public static class NamraHostingExtensions
{
    /// <summary>Prefix of every Namra <see cref="System.Diagnostics.ActivitySource"/> and meter name.</summary>
    public const string TelemetryPrefix = "Namra.";

    /// <summary>
    /// Registers a role's gRPC service: one <typeparamref name="TService"/> serves every call, from the network
    /// (<see cref="MapNamraGrpcService"/>, or <c>MapGrpcService</c>, finds it here) and from this process
    /// (<see cref="Clients.InProcessCallInvoker"/>); <paramref name="bind"/>, the generated <c>BindService</c>, connects
    /// both to it. Namra's services keep no state per call; left unregistered, grpc-dotnet would build one per call and
    /// resolve its dependencies each time.
    /// </summary>
    public static IServiceCollection AddNamraGrpcService<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TService, TBase>(this IServiceCollection services, string role, Action<Grpc.Core.ServiceBinderBase, TBase> bind)
        where TService : class, TBase
    {
        services.AddSingleton<TService>();
        services.AddSingleton(Clients.InProcessService.Of<TService, TBase>(role, bind));
        services.TryAddSingleton<NamraGrpcEndpoints>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Grpc.AspNetCore.Server.Model.IServiceMethodProvider<NamraGrpcEndpoints>, NamraGrpcEndpointMethods>());
        return services;
    }

    /// <summary>
    /// Maps the network endpoints of a service registered with <see cref="AddNamraGrpcService"/>, bound to its one
    /// instance without reflection (<see cref="NamraGrpcEndpoints"/>).
    /// </summary>
    public static GrpcServiceEndpointConventionBuilder MapNamraGrpcService<TService>(this WebApplication app)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(app);
        var service = app.Services.GetServices<Clients.InProcessService>().Single(service => service.ServiceType == typeof(TService));
        app.Services.GetRequiredService<NamraGrpcEndpoints>().Add(service, app.Services);
        return app.MapGrpcService<NamraGrpcEndpoints>();
    }

    /// <summary>
    /// Registers the defaults every Namra service needs, in a server or in a host whose services are called only from
    /// its own process (the CLI). Call once, before the services' own <c>Add*</c>; a server also calls
    /// <see cref="ListenOnNamraPorts"/>.
    /// </summary>
    /// <param name="builder">The host being built.</param>
    /// <param name="roles">The services it hosts.</param>
    /// <param name="scraped">
    /// Whether <c>/metrics</c> will be served (<see cref="MapNamraDefaults"/>). A host that listens nowhere and exports
    /// nothing over OTLP records no metrics at all: nobody would read them.
    /// </param>
    public static IHostApplicationBuilder AddNamraDefaults(this IHostApplicationBuilder builder, NamraRoles roles, bool scraped = true)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(roles);

        // ASP.NET Core logs four Information lines for every request (starting, endpoint executing and executed,
        // finished): for a service called several times per run, and by health probes, that is most of its log and
        // a cost on every call. Warnings and errors still show. The lowest-priority source, so any setting
        // (Logging__LogLevel__Microsoft.AspNetCore=Information) turns them back on.
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
        {
            // JSON transcoding logs a stack trace at Information for every malformed REST body an anonymous caller sends.
            InitialData = new Dictionary<string, string?> { ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning", ["Logging:LogLevel:Grpc.AspNetCore.Grpc.JsonTranscoding"] = "Warning" },
        });

        builder.Services.AddNamraSettings<NamraHostOptions, NamraHostOptionsValidator>(NamraHostOptions.SectionName)
            .Bind(builder.Configuration.GetSection(NamraHostOptions.SectionName));
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(roles);
        builder.Services.AddSingleton<NamraEndpoints>();
        builder.Services.AddSingleton<Clients.NamraServiceChannels>();
        builder.Services.AddSingleton<Trust.ServiceTrust>();
        builder.Services.AddSingleton<Secrets.SecretStore>();
        builder.Services.AddOptions<HostOptions>().Configure<IOptions<NamraHostOptions>>(
            (host, namra) => host.ShutdownTimeout = namra.Value.ShutdownTimeout);

        builder.Services.AddGrpc(grpc =>
        {
            // Order matters: metrics first (outermost) so it records the status the mapper produced.
            grpc.Interceptors.Add<GrpcMetricsInterceptor>();
            grpc.Interceptors.Add<ExceptionMappingInterceptor>();
            grpc.Interceptors.Add<Trust.ServiceTrustInterceptor>();
            grpc.EnableDetailedErrors = false;
        });
        builder.Services.AddOptions<GrpcServiceOptions>().Configure<IOptions<NamraHostOptions>>(
            (grpc, namra) => grpc.MaxReceiveMessageSize = namra.Value.MaxReceiveMessageBytes);
        // The reflection service lists what this process serves. grpc-dotnet's own list finds each mapped service by
        // its generated base class, which Namra's endpoints (NamraGrpcEndpoints) do not have.
        builder.Services.TryAddSingleton(_ => new Grpc.Reflection.ReflectionServiceImpl(ServedServices(roles)));
        builder.Services.TryAddSingleton(_ => new Grpc.Reflection.ReflectionV1ServiceImpl(ServedServices(roles)));
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks(health => health.UseHealthChecksCache = false)
            .AddCheck<DrainingHealthCheck>("draining");
        builder.Services.AddSingleton<DrainState>();
        builder.Services.AddHostedService<DrainDelayService>();

        AddOpenTelemetry(builder, roles, scraped);
        return builder;
    }

    /// <summary>
    /// Listens on the ports of <see cref="NamraHostOptions"/>: gRPC over HTTP/2 on one, HTTP/1.1 (REST, <c>/metrics</c>)
    /// on the other. A host without it serves only its own process: no sockets, no HTTP, nothing exposed.
    /// </summary>
    public static WebApplicationBuilder ListenOnNamraPorts(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var options = kestrel.ApplicationServices.GetRequiredService<IOptions<NamraHostOptions>>().Value;
            var address = IPAddress.Parse(options.ListenAddress);
            ListenOptions? grpc = null;
            ListenOptions? http = null;
            kestrel.Listen(address, options.GrpcPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                grpc = listen;
            });
            kestrel.Listen(address, options.HttpPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                http = listen;
            });
            kestrel.ApplicationServices.GetRequiredService<NamraEndpoints>().Capture(grpc!, http!);
        });

        return builder;
    }

    /// <summary>Maps health, reflection and <c>/metrics</c>. Call after <c>Build()</c>, before the services' own <c>Map*</c>.</summary>
    public static WebApplication MapNamraDefaults(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var options = app.Services.GetRequiredService<IOptions<NamraHostOptions>>().Value;
        var endpoints = app.Services.GetRequiredService<NamraEndpoints>();

        app.MapGrpcHealthChecksService();
        if (options.EnableReflection)
        {
            app.MapGrpcReflectionService();
        }

        // Served on both ports, but only the HTTP/1.1 one is reachable by Prometheus (the other is HTTP/2 only).
        app.MapPrometheusScrapingEndpoint("/metrics");

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Namra.Hosting");
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        var roleNames = string.Join(',', app.Services.GetRequiredService<NamraRoles>().Enabled);
        lifetime.ApplicationStarted.Register(() =>
        {
            var (grpcAddress, httpAddress) = (endpoints.GrpcAddress, endpoints.HttpAddress);
            Log.Listening(logger, roleNames, grpcAddress, httpAddress);
        });
        var drain = app.Services.GetRequiredService<DrainState>();
        lifetime.ApplicationStopping.Register(() =>
        {
            drain.Begin();
            Log.Draining(logger, options.ShutdownTimeout);
        });
        return app;
    }

    /// <summary>The gRPC services a host of <paramref name="roles"/> serves: its roles', health and reflection.</summary>
    private static IEnumerable<Google.Protobuf.Reflection.ServiceDescriptor> ServedServices(NamraRoles roles) =>
    [
        .. roles.EnabledRoles.Select(role => role.Service),
        Grpc.Health.V1.Health.Descriptor,
        Grpc.Reflection.V1Alpha.ServerReflection.Descriptor,
        Grpc.Reflection.V1.ServerReflection.Descriptor,
    ];

    private static void AddOpenTelemetry(IHostApplicationBuilder builder, NamraRoles roles, bool scraped)
    {
        // Namra's meters and the runtime's are scraped at /metrics whatever else is configured. OTLP is used only when
        // an endpoint is configured, as the OpenTelemetry spec's OTEL_* variables say; everything else (protocol,
        // headers, sampler) is read by the SDK from the same variables.
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        if (!otlp && !scraped)
        {
            // An embedded host (the CLI): no metrics, trace ids and context only.
            builder.Services.AddHostedService<TracingWithoutExporter>();
            return;
        }

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource =>
            {
                // OTEL_SERVICE_NAME, when set, names the service; otherwise the roles do.
                if (string.IsNullOrWhiteSpace(builder.Configuration["OTEL_SERVICE_NAME"]))
                {
                    resource.AddService(
                        serviceName: "namra-" + string.Join('+', roles.Enabled),
                        serviceVersion: typeof(NamraHostingExtensions).Assembly.GetName().Version?.ToString(3));
                }
            })
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(TelemetryPrefix + "*").AddRuntimeInstrumentation();
                if (scraped)
                {
                    // Every scrape reads the meters as they are: a cached answer would hide what just happened.
                    metrics.AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0);
                }

                if (otlp)
                {
                    metrics.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation();
                }
            });
        if (!otlp)
        {
            // Nothing would receive spans: trace ids and context only (TracingWithoutExporter).
            builder.Services.AddHostedService<TracingWithoutExporter>();
            return;
        }

        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });
        telemetry
            .WithTracing(tracing => tracing
                .AddSource(TelemetryPrefix + "*")
                .AddAspNetCoreInstrumentation(aspnet => aspnet.Filter = IsNotInfrastructure)
                // One client span per call between services: the gRPC one, not also the HTTP request beneath it.
                .AddGrpcClientInstrumentation(grpc => grpc.SuppressDownstreamInstrumentation = true)
                .AddHttpClientInstrumentation())
            .UseOtlpExporter();
    }

    // Scrapes, health probes and reflection would drown the traces that matter.
    private static bool IsNotInfrastructure(HttpContext context) =>
        !context.Request.Path.StartsWithSegments("/metrics", StringComparison.Ordinal)
        && !context.Request.Path.StartsWithSegments("/grpc.health.v1.Health", StringComparison.Ordinal)
        && !context.Request.Path.StartsWithSegments("/grpc.reflection.v1alpha.ServerReflection", StringComparison.Ordinal)
        && !context.Request.Path.StartsWithSegments("/grpc.reflection.v1.ServerReflection", StringComparison.Ordinal);
}
