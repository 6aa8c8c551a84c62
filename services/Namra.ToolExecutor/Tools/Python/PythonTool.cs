using System.Text.Json;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;

namespace Namra.ToolExecutor.Tools.Python;

/// <summary>
/// <c>python</c>: the <c>@tool</c> functions of a Python module, served by a plugin process this executor starts and
/// keeps (<see cref="PythonPlugins"/>), over the same <c>ToolProviderService</c> contract as a <c>grpc</c> entry. A
/// plugin that dies during a call gives that call an error result and is started again for the next one.
/// </summary>
internal sealed class PythonTool(PythonPlugins plugins) : ITool
{
    public ToolType Type => ToolType.Python;

    public async Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken) =>
        (await plugins.GetAsync(PythonPluginSettings.From(config), cancellationToken).ConfigureAwait(false)).Tools;

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken)
    {
        var settings = PythonPluginSettings.From(config);
        PythonPlugin.CallInFlight inFlight;
        try
        {
            inFlight = await plugins.UseAsync(settings, cancellationToken).ConfigureAwait(false);
        }
        catch (NamraException exception)
        {
            return ToolOutcome.Error(exception.Message);
        }

        using var lease = inFlight;
        var plugin = inFlight.Plugin;
        try
        {
            var response = await plugin.Client.InvokeToolAsync(
                ToolProviderRequests.Invoke(call, arguments, config.Python?.Options),
                ToolProviderRequests.Headers(call),
                cancellationToken: cancellationToken).ConfigureAwait(false);
            return new ToolOutcome(response.Content, response.IsError);
        }
        catch (RpcException exception) when (exception.StatusCode != StatusCode.Cancelled || !cancellationToken.IsCancellationRequested)
        {
            if (exception.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown
                && await plugin.WaitForExitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false))
            {
                plugins.Forget(settings, plugin);
                return ToolOutcome.Error($"The Python plugin serving '{settings.Module}' stopped during the call ({plugin.Ending}" +
                    (plugin.LastError.Length > 0 ? $"; its last words: {plugin.LastError}" : "") +
                    "). The call may or may not have taken effect; the plugin starts again for the next call.");
            }

            return ToolOutcome.Error($"The Python plugin serving '{settings.Module}' failed the call: {exception.StatusCode} {exception.Status.Detail}");
        }
    }
}
