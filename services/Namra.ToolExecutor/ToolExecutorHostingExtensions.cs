using Namra.Hosting.Roles;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Namra.Hosting;
using Namra.ToolExecutor.Options;
using Namra.ToolExecutor.Tools;
using Namra.ToolExecutor.Tools.Python;
using Namra.ToolExecutor.Tools.Shell;

namespace Namra.ToolExecutor;

/// <summary>Registers and maps the tool executor on a Namra host.</summary>
public static class ToolExecutorHostingExtensions
{
    /// <summary>The role: its name, the key of its address, its gRPC service, how it is added and mapped.</summary>
    public static NamraRole Role { get; } = new(Contracts.ServiceRoles.ToolExecutor, "ToolExecutor", () => Contracts.V1.ToolExecutorService.Descriptor, builder => builder.AddToolExecutor(), app => app.MapToolExecutor())
    {
        // Called from other processes by these roles only (with a service key, others are refused).
        CalledBy = [Contracts.ServiceRoles.Orchestrator],
    };

    /// <summary>Adds the tool executor: options, argument validation and the tools.</summary>
    public static IHostApplicationBuilder AddToolExecutor(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddNamraSettings<ToolExecutorOptions, ToolExecutorOptionsValidator>(ToolExecutorOptions.SectionName)
            .Bind(builder.Configuration.GetSection(ToolExecutorOptions.SectionName));
        Microsoft.Extensions.DependencyInjection.Extensions.ServiceCollectionDescriptorExtensions.TryAddSingleton<ArgumentValidator>(builder.Services);
        builder.Services.AddSingleton<ITool, CalculatorTool>();
        builder.Services.AddSingleton<ITool, FilesystemTool>();
        builder.Services.AddHostedService<ProcessProtection>();
        builder.Services.AddSingleton<CommandSandbox>();
        builder.Services.AddSingleton<ITool, ShellTool>();
        builder.Services.AddSingleton<ITool, HttpTool>();
        builder.Services.AddSingleton<ITool, DatabaseTool>();
        builder.Services.AddSingleton<McpSessions>();
        builder.Services.AddSingleton<ITool, McpTool>();
        builder.Services.AddSingleton<ToolProviderChannels>();
        builder.Services.AddSingleton<ITool, GrpcProviderTool>();
        builder.Services.AddSingleton<PythonPlugins>();
        builder.Services.AddSingleton<ITool, PythonTool>();
        // The factory's per-request logging is left out: every tool call has its own span, metrics and log line.
        builder.Services.AddHttpClient(McpSessions.HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan).RemoveAllLoggers();
        // Two clients, so a connection opened for a tool that may reach internal addresses is never reused by one that may not.
        // Neither uses the ambient proxy (HTTP_PROXY): the guard would check the proxy's address instead of the target's.
        // Neither sends trace context: a run's trace id is not for the third parties a model calls.
        builder.Services.AddHttpClient(HttpTool.PublicClient, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .RemoveAllLoggers()
            .ConfigurePrimaryHttpMessageHandler(() => HttpTool.Handler(NetworkGuard.ConnectPublicAsync));
        builder.Services.AddHttpClient(HttpTool.AnyClient, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .RemoveAllLoggers()
            .ConfigurePrimaryHttpMessageHandler(() => HttpTool.Handler(connect: null));
        // Calls from this process (the orchestrator, the memory service's embedder) go straight to the handler.
        builder.Services.AddNamraGrpcService<ToolExecutorGrpcService, Namra.Contracts.V1.ToolExecutorService.ToolExecutorServiceBase>(Contracts.ServiceRoles.ToolExecutor, Namra.Contracts.V1.ToolExecutorService.BindService);
        return builder;
    }

    /// <summary>Maps <c>namra.v1.ToolExecutorService</c>.</summary>
    public static WebApplication MapToolExecutor(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapNamraGrpcService<ToolExecutorGrpcService>();
        return app;
    }
}
