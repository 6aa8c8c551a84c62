using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Namra.ToolExecutor.Options;
using Namra.ToolExecutor.Tools;

namespace Namra.ToolExecutor;

/// <summary>Registers and maps the tool executor on a Namra host.</summary>
public static class ToolExecutorHostingExtensions
{
    /// <summary>Adds the tool executor: options, argument validation and the tools.</summary>
    public static WebApplicationBuilder AddToolExecutor(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<ToolExecutorOptions>()
            .Bind(builder.Configuration.GetSection(ToolExecutorOptions.SectionName))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ToolExecutorOptions>, ToolExecutorOptionsValidator>();
        builder.Services.AddSingleton<ArgumentValidator>();
        builder.Services.AddSingleton<ITool, CalculatorTool>();
        builder.Services.AddSingleton<ITool, FilesystemTool>();
        builder.Services.AddSingleton<ITool, ShellTool>();
        return builder;
    }

    /// <summary>Maps <c>namra.v1.ToolExecutorService</c>.</summary>
    public static WebApplication MapToolExecutor(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGrpcService<ToolExecutorGrpcService>();
        return app;
    }
}
