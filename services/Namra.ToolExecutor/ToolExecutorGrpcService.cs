using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting;
using Namra.Hosting.Errors;
using Namra.ToolExecutor.Options;
using Namra.ToolExecutor.Tools;

namespace Namra.ToolExecutor;

/// <summary>
/// The <c>namra.v1.ToolExecutorService</c> endpoint: describes an agent's tools, and runs each call bounded in time
/// and output, with its arguments checked against the tool's schema first. Whatever a tool does wrong, the
/// caller gets an error result for the model, never a failed call; status codes are for bad requests only.
/// </summary>
internal sealed class ToolExecutorGrpcService(
    IEnumerable<ITool> tools,
    ArgumentValidator validator,
    IOptions<ToolExecutorOptions> options,
    TimeProvider timeProvider,
    ILogger<ToolExecutorGrpcService> logger) : ToolExecutorService.ToolExecutorServiceBase
{
    private readonly Dictionary<ToolType, ITool> _tools = tools.ToDictionary(t => t.Type);

    public override async Task<ListToolsResponse> ListTools(ListToolsRequest request, ServerCallContext context)
    {
        var response = new ListToolsResponse();
        for (var i = 0; i < request.Tools.Count; i++)
        {
            var config = request.Tools[i];
            var tool = ToolFor(config, $"tools[{i}]");
            RefuseUntrusted(tool, config, request.Context);
            var idempotent = config.Idempotent || tool.IsAlwaysIdempotent(config);
            foreach (var description in await tool.DescribeAsync(config, context.CancellationToken).ConfigureAwait(false))
            {
                response.Tools.Add(new ToolDefinition
                {
                    Name = description.Name,
                    Description = description.Description,
                    InputSchemaJson = description.InputSchemaJson,
                    Source = config.Name,
                    Idempotent = idempotent,
                });
            }
        }

        return response;
    }

    public override async Task<ExecuteToolResponse> ExecuteTool(ExecuteToolRequest request, ServerCallContext context)
    {
        if (request.Tool is null || request.Call is null)
        {
            throw new InvalidArgumentException(request.Tool is null ? "tool" : "call", "Send the tool's configuration and the call.");
        }

        var config = request.Tool;
        var call = request.Call;
        var tool = ToolFor(config, "tool");
        RefuseUntrusted(tool, config, request.Context);
        var description = (await tool.DescribeAsync(config, context.CancellationToken).ConfigureAwait(false)).FirstOrDefault(d => d.Name == call.Name)
            ?? throw new InvalidArgumentException("call.name", $"The entry '{config.Name}' provides no tool named '{call.Name}'.");

        var typeName = Contracts.ToolTypeNames.Of(config.Type);
        using var activity = ToolExecutorTelemetry.ActivitySource.StartActivity($"execute_tool {call.Name}");
        activity?.SetTag(ToolExecutorTelemetry.Attributes.OperationName, "execute_tool");
        activity?.SetTag(ToolExecutorTelemetry.Attributes.ToolName, call.Name);
        activity?.SetTag(ToolExecutorTelemetry.Attributes.ToolCallId, call.Id);
        activity?.SetTag(ToolExecutorTelemetry.Attributes.ToolType, typeName);
        activity?.SetTag(ToolExecutorTelemetry.Attributes.RunId, request.Context?.RunId);
        activity?.SetTag(ToolExecutorTelemetry.Attributes.AgentName, request.Context?.AgentName);

        var started = timeProvider.GetTimestamp();
        var (outcome, kind) = await RunAsync(tool, config, description, call, request.Context ?? new ToolCallContext(), request.Resumed, context.CancellationToken).ConfigureAwait(false);
        var elapsed = timeProvider.GetElapsedTime(started);

        var max = options.Value.MaxOutputCharacters;
        var truncated = outcome.Content.Length > max;
        var content = truncated
            ? string.Concat(outcome.Content.AsSpan(0, max), $"\n[output cut at {max:N0} characters of {outcome.Content.Length:N0}]")
            : outcome.Content;

        activity?.SetTag(ToolExecutorTelemetry.Attributes.Outcome, kind);
        if (outcome.IsError)
        {
            activity?.SetStatus(ActivityStatusCode.Error, kind);
        }

        var toolLabel = ToolExecutorTelemetry.Tools.Of(call.Name);
        ToolExecutorTelemetry.Calls.Add(1, toolLabel, typeName, kind, ToolExecutorTelemetry.Agents.Of(request.Context?.AgentName ?? ""));
        ToolExecutorTelemetry.Duration.Record(elapsed.TotalSeconds, toolLabel, typeName);
        return new ExecuteToolResponse
        {
            Result = new ToolResult { ToolCallId = call.Id, Content = content, IsError = outcome.IsError },
            Duration = Duration.FromTimeSpan(elapsed),
            Truncated = truncated,
        };
    }

    // The run's id and the model's call id: the same for every delivery of the call, unique across runs.
    private static string IdempotencyKey(string runId, string callId) => runId.Length > 0 ? $"{runId}:{callId}" : callId;

    private async Task<(ToolOutcome Outcome, string Kind)> RunAsync(ITool tool, ToolConfig config, ToolDescription description, ToolCall call, ToolCallContext caller, bool resumed, CancellationToken cancellationToken)
    {
        if (call.ArgumentsJson.Length > options.Value.MaxArgumentsCharacters)
        {
            return (ToolOutcome.Error($"The arguments are {call.ArgumentsJson.Length:N0} characters long; the limit is {options.Value.MaxArgumentsCharacters:N0}."), "invalid_arguments");
        }

        JsonDocument arguments;
        try
        {
            arguments = JsonDocument.Parse(call.ArgumentsJson.Length > 0 ? call.ArgumentsJson : "{}", new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException exception)
        {
            return (ToolOutcome.Error($"The arguments are not valid JSON: {exception.Message}"), "invalid_arguments");
        }

        var problems = validator.Validate(description.InputSchemaJson, arguments.RootElement);
        if (problems.Count > 0)
        {
            arguments.Dispose();
            return (ToolOutcome.Error("The arguments do not match the tool's schema: " + string.Join("; ", problems)), "invalid_arguments");
        }

        if (resumed && !config.Idempotent && !tool.IsIdempotent(config, arguments.RootElement))
        {
            arguments.Dispose();
            // It may have run, or not: running it again could do it twice. The model decides what to do.
            return (ToolOutcome.Error("The call was interrupted (the orchestrator replica running it was lost) and its outcome is unknown: it may or may not " +
                $"have taken effect. It was not run again, because {call.Name} calls are not idempotent; check before calling it again."), "interrupted");
        }

        var timeout = config.Timeout is { } configured ? configured.ToTimeSpan() : options.Value.DefaultTimeout;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        var running = StartOffTheRequestThread(tool, config, new ToolCallInfo(call.Name, IdempotencyKey(caller.RunId, call.Id), call.Id, caller.RunId, caller.AgentName), arguments, limit.Token);
        try
        {
            // Awaited only until the deadline: a tool that blocks without looking at its token (a synchronous system
            // call, a library that ignores it) is left to finish alone, and the call ends on time anyway.
            var outcome = await running.WaitAsync(limit.Token).ConfigureAwait(false);
            return (outcome, outcome.IsError ? "error" : "ok");
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            if (!running.IsCompleted)
            {
                Log.ToolOutlivedItsTimeout(logger, call.Name, Contracts.ToolTypeNames.Of(config.Type), timeout.TotalSeconds);
            }

            return (ToolOutcome.Error($"The tool did not finish within {timeout.TotalSeconds:0.###} s and was stopped."), "timeout");
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // A tool's bug must not fail the run: the model learns the tool failed, the logs learn why.
            Log.ToolFailed(logger, exception, call.Name, Contracts.ToolTypeNames.Of(config.Type));
            return (ToolOutcome.Error("The tool failed unexpectedly; the tool executor's logs have the details."), "error");
        }
    }

    // The tool runs on the thread pool, so even one that does all its work before returning its task (a synchronous
    // file walk) can be left at its deadline. Its arguments stay readable until it has finished, whenever that is,
    // and a failure after the call was answered is observed, not left to the finalizer.
    private static Task<ToolOutcome> StartOffTheRequestThread(ITool tool, ToolConfig config, ToolCallInfo call, JsonDocument arguments, CancellationToken cancellationToken)
    {
        var running = Task.Run(() => tool.ExecuteAsync(config, call, arguments.RootElement, cancellationToken), cancellationToken);
        // Not cancellable: the arguments are released however the tool ends.
        _ = running.ContinueWith(static (finished, state) =>
        {
            ((JsonDocument)state!).Dispose();
            _ = finished.Exception;
        }, arguments, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return running;
    }

    // A definition from a caller whose tools' authority is not trusted: each tool judges its own settings.
    private static void RefuseUntrusted(ITool tool, ToolConfig config, ToolCallContext? context)
    {
        if (context?.Untrusted == true && tool.RefuseUntrusted(config) is { } reason)
        {
            throw new NamraException(StatusCode.PermissionDenied,
                $"The tool '{config.Name}' ({Contracts.ToolTypeNames.Of(config.Type)}) is not run for agents sent inline over the network: {reason}. They may use " +
                "builtin.calculator, and builtin.http on public networks with headers that read no variables. Deploy the agent to the agents folder and run it " +
                "by name@version, or set Namra:Orchestrator:TrustInlineAgents where every caller may run programs on the tool executor.");
        }
    }

    private ITool ToolFor(ToolConfig config, string field)
    {
        var tool = _tools.TryGetValue(config.Type, out var known)
            ? known
            : config.Type == ToolType.Unspecified
                ? throw new InvalidArgumentException($"{field}.type", "Name the tool's type.")
                : throw new NamraException(StatusCode.Unimplemented, $"This tool executor does not know tool type {(int)config.Type}; is it older than the config service?");
        if (config.SettingsCase != ToolConfig.SettingsOneofCase.None && config.SettingsCase != SettingsOf(config.Type))
        {
            // Settings of another type would be read as none at all: a shell entry with http settings would run unrestricted defaults.
            throw new InvalidArgumentException($"{field}.{config.SettingsCase.ToString().ToLowerInvariant()}",
                $"These are the settings of another tool type than {Contracts.ToolTypeNames.Of(config.Type)}.");
        }

        return tool;
    }

    private static ToolConfig.SettingsOneofCase SettingsOf(ToolType type) => type switch
    {
        ToolType.BuiltinCalculator => ToolConfig.SettingsOneofCase.Calculator,
        ToolType.BuiltinHttp => ToolConfig.SettingsOneofCase.Http,
        ToolType.BuiltinFilesystem => ToolConfig.SettingsOneofCase.Filesystem,
        ToolType.BuiltinDatabase => ToolConfig.SettingsOneofCase.Database,
        ToolType.BuiltinShell => ToolConfig.SettingsOneofCase.Shell,
        ToolType.Mcp => ToolConfig.SettingsOneofCase.Mcp,
        ToolType.Grpc => ToolConfig.SettingsOneofCase.Grpc,
        ToolType.Python => ToolConfig.SettingsOneofCase.Python,
        _ => ToolConfig.SettingsOneofCase.None,
    };
}
