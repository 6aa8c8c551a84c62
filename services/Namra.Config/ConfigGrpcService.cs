using System.Diagnostics;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Namra.Config.Registry;
using Namra.Config.Validation;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;

namespace Namra.Config;

/// <summary>The loader for definitions sent over the API, whose <c>${VAR}</c> reads only allowed variables.</summary>
internal sealed record InlineAgentLoader(AgentLoader Loader);

/// <summary>The <c>namra.v1.ConfigService</c> gRPC endpoint.</summary>
internal sealed class ConfigGrpcService(
    InlineAgentLoader inline,
    AgentRegistry registry,
    AgentReferences references,
    IHostApplicationLifetime lifetime,
    ILogger<ConfigGrpcService> logger) : ConfigService.ConfigServiceBase
{
    private const int DefaultPageSize = 100;
    private const int MaxPageSize = 1000;

    public override Task<ValidateAgentDefinitionResponse> ValidateAgentDefinition(ValidateAgentDefinitionRequest request, ServerCallContext context)
    {
        var result = WithTeam(Load(request.Agent, "agent"), request.Agent.FileName);
        var response = new ValidateAgentDefinitionResponse { Valid = result.IsValid, Agent = result.Agent, Ref = result.Ref };
        response.Diagnostics.AddRange(result.Diagnostics.Select(d => d.ToProto()));
        return Task.FromResult(response);
    }

    public override Task<ResolveAgentResponse> ResolveAgent(ResolveAgentRequest request, ServerCallContext context)
    {
        switch (request.Source?.SourceCase)
        {
            case AgentSource.SourceOneofCase.Reference:
                var registered = references.Get(request.Source.Reference);
                if (references.CheckTeam(registered.Agent, registered.Ref, registered.Origin) is [_, ..] problems)
                {
                    throw new NamraException(StatusCode.FailedPrecondition,
                        $"The agent {registered.Ref.Name}@{registered.Ref.Version} cannot run: {string.Join(" ", problems.Select(p => $"{p.FieldPath}: {p.Message}"))}");
                }

                return Task.FromResult(new ResolveAgentResponse { Agent = registered.Agent, Ref = registered.Ref });
            case AgentSource.SourceOneofCase.Inline:
                var result = WithTeam(Load(request.Source.Inline, "source.inline"), request.Source.Inline.FileName);
                if (!result.IsValid)
                {
                    throw result.ToInvalidArgument("source.inline.content");
                }

                var response = new ResolveAgentResponse { Agent = result.Agent, Ref = result.Ref };
                response.Diagnostics.AddRange(result.Diagnostics.Select(d => d.ToProto()));
                return Task.FromResult(response);
            default:
                throw new InvalidArgumentException("source", "Give the agent as `reference` (name@version) or as `inline` YAML/TOML text.");
        }
    }

    public override Task<RegisterAgentResponse> RegisterAgent(RegisterAgentRequest request, ServerCallContext context)
    {
        var result = Load(request.Agent, "agent");
        if (result is not { Agent: { } agent, Ref: { } agentRef })
        {
            throw result.ToInvalidArgument("agent.content");
        }

        var (registered, created) = registry.Register(agent, agentRef);
        if (created)
        {
            Log.AgentRegistered(logger, agentRef.Name, agentRef.Version, agentRef.ContentHash);
        }

        return Task.FromResult(new RegisterAgentResponse { Agent = registered.Agent, Ref = registered.Ref, Created = created });
    }

    public override Task<GetAgentResponse> GetAgent(GetAgentRequest request, ServerCallContext context)
    {
        var registered = registry.Get(request.Reference);
        if (request.ContentHash.Length > 0 && request.ContentHash != registered.Ref.ContentHash)
        {
            throw new NamraException(StatusCode.FailedPrecondition,
                $"{registered.Ref.Name}@{registered.Ref.Version} now has content {registered.Ref.ContentHash}, not {request.ContentHash}.",
                [new Google.Rpc.PreconditionFailure { Violations = { new Google.Rpc.PreconditionFailure.Types.Violation
                {
                    Type = "CONTENT_HASH", Subject = request.Reference, Description = "The definition changed since the hash was taken.",
                } } }]);
        }

        return Task.FromResult(new GetAgentResponse { Agent = registered.Agent, Ref = registered.Ref, Origin = registered.Origin });
    }

    public override Task<ListAgentsResponse> ListAgents(ListAgentsRequest request, ServerCallContext context)
    {
        if (request.PageSize is < 0 or > MaxPageSize)
        {
            throw new InvalidArgumentException("page_size", $"page_size must be between 0 and {MaxPageSize}; it is {request.PageSize}.");
        }

        var offset = PageToken.Decode(request.PageToken);
        var size = request.PageSize == 0 ? DefaultPageSize : request.PageSize;
        var matching = registry.All().Where(a => request.Name.Length == 0 || a.Ref.Name == request.Name).ToList();
        var response = new ListAgentsResponse();
        response.Agents.AddRange(matching.Skip(offset).Take(size).Select(a => a.ToSummary()));
        if (offset + size < matching.Count)
        {
            response.NextPageToken = PageToken.Encode(offset + size);
        }

        return Task.FromResult(response);
    }

    public override async Task WatchAgents(WatchAgentsRequest request, IServerStreamWriter<WatchAgentsResponse> responseStream, ServerCallContext context)
    {
        // Subscribe before the snapshot, so no change between the two is missed (at worst one is sent twice).
        var changes = registry.Subscribe(out var subscription);
        using var _ = subscription;

        // Watches end when the client goes away or the server starts draining, so they never hold up shutdown.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);

        // Headers tell the client it is subscribed: a change made after it has them will reach it.
        await context.WriteResponseHeadersAsync([]).ConfigureAwait(false);
        try
        {
            if (request.SendInitial)
            {
                foreach (var agent in registry.All())
                {
                    await responseStream.WriteAsync(new WatchAgentsResponse { Type = AgentChangeType.Added, Agent = agent.ToSummary() }, stop.Token).ConfigureAwait(false);
                }

                await responseStream.WriteAsync(new WatchAgentsResponse { Type = AgentChangeType.Synced }, stop.Token).ConfigureAwait(false);
            }

            await foreach (var change in changes.ReadAllAsync(stop.Token).ConfigureAwait(false))
            {
                var message = new WatchAgentsResponse
                {
                    Type = change.Type,
                    Agent = change.Agent?.ToSummary() ?? new AgentSummary { Origin = change.Origin },
                };
                message.Diagnostics.AddRange(change.Diagnostics.Select(d => d.ToProto()));
                await responseStream.WriteAsync(message, stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            // Draining: end the stream with OK; the client reconnects to another replica.
        }
    }

    // A valid definition whose agents called as tools are missing, or call each other in a cycle, is not valid.
    private AgentLoadResult WithTeam(AgentLoadResult result, string file)
    {
        if (result is not { Agent: { } agent, Ref: { } agentRef } || references.CheckTeam(agent, agentRef, file) is not [_, ..] problems)
        {
            return result;
        }

        return result with { Agent = null, Ref = null, Diagnostics = [.. result.Diagnostics, .. problems] };
    }

    private AgentLoadResult Load(InlineAgent? agent, string field)
    {
        if (agent is null || agent.Content.Length == 0)
        {
            throw new InvalidArgumentException($"{field}.content", "The agent definition is empty; send its YAML or TOML text in `content`.");
        }

        var format = AgentLoader.DetectFormat(agent.FileName, agent.Content, agent.Format);
        var formatName = format == AgentFormat.Toml ? "toml" : "yaml";
        using var activity = ConfigTelemetry.ActivitySource.StartActivity("validate_agent");
        activity?.SetTag(ConfigTelemetry.Attributes.Format, formatName);
        var started = Stopwatch.GetTimestamp();
        var result = inline.Loader.Load(agent.Content, agent.FileName, format);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;

        var outcome = result.IsValid ? "valid" : "invalid";
        ConfigTelemetry.Validations.Add(1, outcome, formatName);
        ConfigTelemetry.ValidationDuration.Record(elapsed, formatName);
        if (activity is not null)
        {
            activity.SetTag(ConfigTelemetry.Attributes.Result, outcome);
            activity.SetTag(ConfigTelemetry.Attributes.Errors, result.Diagnostics.Count(d => d.Severity == DiagnosticSeverity.Error));
            if (result.Ref is { } agentRef)
            {
                activity.SetTag(ConfigTelemetry.Attributes.AgentName, agentRef.Name);
                activity.SetTag(ConfigTelemetry.Attributes.AgentVersion, agentRef.Version);
            }
        }

        return result;
    }
}
