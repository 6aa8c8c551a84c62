using System.Diagnostics;
using System.Diagnostics.Metrics;
using Namra.Contracts.V1;
using Namra.Hosting.Telemetry;
using Namra.Orchestrator.Loop;

namespace Namra.Orchestrator;

/// <summary>Traces and metrics of runs.</summary>
internal static class OrchestratorTelemetry
{
    public const string Name = "Namra.Orchestrator";

    public static readonly ActivitySource ActivitySource = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Runs ended, by tenant, agent and status.</summary>
    public static readonly NamraCounter Runs = NamraMetrics.Counter(Meter, "namra.runs", "{run}", "Runs ended, by status.", "tenant", "agent", "status");

    /// <summary>Time a run took.</summary>
    public static readonly NamraHistogram Duration = NamraMetrics.DurationHistogram(Meter, "namra.run.duration", "Time of a run.", "agent", "status");

    /// <summary>Tokens used by runs, by tenant, agent, model and kind (input, output).</summary>
    public static readonly NamraCounter Tokens = NamraMetrics.Counter(Meter, "namra.run.tokens", "{token}", "Tokens used by runs.", "tenant", "agent", "model", "kind");

    /// <summary>Dollars spent by runs, in millionths (counters take whole numbers), by tenant, agent and model.</summary>
    public static readonly NamraCounter CostMicros = NamraMetrics.Counter(Meter, "namra.run.cost.micro_usd", "{micro_usd}", "Money spent by runs, in millionths of a US dollar.", "tenant", "agent", "model");

    /// <summary>Runs whose cost is not known, which <see cref="CostMicros"/> leaves out rather than count as $0.</summary>
    public static readonly NamraCounter CostUnknown = NamraMetrics.Counter(Meter, "namra.runs.cost_unknown", "{run}",
        "Runs whose cost is not known (a model without a price, a provider request of unknown outcome); the run's cost_unknown says why.", "tenant", "agent");

    // Agent and model names come from callers (definitions sent inline), tenants from keys and tokens: a bounded number
    // of series each (the first seen keep their names, later ones are "other").
    private static readonly BoundedLabel Agents = new(500);
    private static readonly BoundedLabel Models = new(100);
    private static readonly BoundedLabel TenantLabels = new(100);

    /// <summary>The label of an agent's name.</summary>
    public static string AgentLabel(string agent) => Agents.Of(agent);

    /// <summary>Model turns per run.</summary>
    public static readonly NamraCounter Iterations = NamraMetrics.Counter(Meter, "namra.run.iterations", "{iteration}", "Model turns taken by runs.", "agent");

    /// <summary>Runs this replica claimed after their replica was lost, by agent.</summary>
    public static readonly NamraCounter Recovered = NamraMetrics.Counter(Meter, "namra.runs.recovered", "{run}", "Runs claimed from a lost replica.", "agent");

    /// <summary>Tool calls that waited for a person's approval, by agent.</summary>
    public static readonly NamraCounter ApprovalsRequested = NamraMetrics.Counter(Meter, "namra.approvals.requested", "{call}", "Tool calls that waited for approval.", "agent");

    /// <summary>Decisions on tool calls, by agent and decision (approved, denied).</summary>
    public static readonly NamraCounter ApprovalsDecided = NamraMetrics.Counter(Meter, "namra.approvals.decided", "{call}", "Decisions on tool calls that waited for approval.", "agent", "decision");

    /// <summary>Time from a call's approval request to its decision.</summary>
    public static readonly NamraHistogram ApprovalWait = NamraMetrics.DurationHistogram(Meter, "namra.approval.wait", "Time a tool call waited for its decision.", "agent");

    /// <summary>Entries of the audit log, by whether the memory service stored them (<c>stored</c>, <c>lost</c>).</summary>
    public static readonly NamraCounter AuditEntries = NamraMetrics.Counter(Meter, "namra.audit.entries", "{entry}", "Entries of the audit log, by whether the memory service stored them.", "result");

    /// <summary>Runs handed over to other replicas as this one stopped.</summary>
    public static readonly NamraCounter HandedOver = NamraMetrics.Counter(Meter, "namra.runs.handed_over", "{run}", "Runs handed over to other replicas as this one stopped.");

    public static void Record(Run run, string model, TimeSpan elapsed)
    {
        var agent = AgentLabel(run.Agent?.Name ?? "");
        var tenant = TenantLabels.Of(Contracts.Tenants.OrDefault(run.Tenant));
        var modelLabel = Models.Of(model);
        var status = RunLoop.StatusName(run.Status);
        Runs.Add(1, tenant, agent, status);
        Duration.Record(elapsed.TotalSeconds, agent, status);
        Tokens.Add(run.Usage.InputTokens, tenant, agent, modelLabel, "input");
        Tokens.Add(run.Usage.OutputTokens, tenant, agent, modelLabel, "output");
        if (run.Cost is { } cost)
        {
            CostMicros.Add((long)Math.Round(cost.TotalUsd * 1_000_000), tenant, agent, modelLabel);
        }
        else
        {
            CostUnknown.Add(1, tenant, agent); // counted as unknown, never as zero
        }

        Iterations.Add(run.Iterations, agent);
    }
}
