using System.Text.RegularExpressions;

namespace Namra.Orchestrator.Access;

/// <summary>What a caller of the public API may do.</summary>
internal enum Permission
{
    /// <summary>ValidateAgent.</summary>
    ValidateAgents,

    /// <summary>Execute and ExecuteStream (of the agents the principal's patterns allow).</summary>
    Execute,

    /// <summary>GetRun, ListRuns and GetUsage.</summary>
    ReadRuns,

    /// <summary>CancelRun.</summary>
    CancelRuns,

    /// <summary>ApproveToolCalls and DenyToolCalls.</summary>
    ApproveToolCalls,

    /// <summary>
    /// Inline definitions run with their tools' authority (programs, files, databases, private networks). Granted only
    /// by name (the <c>inline</c> role), never by <see cref="Admin"/>: whoever has it may run programs on the tool executor.
    /// </summary>
    RunInlineTools,

    /// <summary>ListAudit: the audit log (every tenant's for a caller of the default tenant, its own tenant's otherwise).</summary>
    ReadAudit,

    /// <summary>Everything but <see cref="RunInlineTools"/>, and what is added later.</summary>
    Admin,
}

/// <summary>Who calls: a key's id (or <c>anonymous</c>), its tenant, what it may do, and which agents it may run.</summary>
internal sealed record Principal(string Id, string Tenant, IReadOnlySet<Permission> Permissions, IReadOnlyList<string> Roles, IReadOnlyList<string> AgentPatterns)
{
    /// <summary>The key in <c>ServerCallContext.UserState</c> under which the call's principal is kept.</summary>
    public const string UserStateKey = "namra.principal";

    /// <summary>Everything, for a deployment that configures no keys (local use, the embedded CLI).</summary>
    public static Principal Unrestricted { get; } = new("anonymous", Namra.Contracts.Tenants.Default, new HashSet<Permission> { Permission.Admin }, ["admin"], []);

    public bool Has(Permission permission) =>
        Permissions.Contains(permission) || permission != Permission.RunInlineTools && Permissions.Contains(Permission.Admin);

    /// <summary>Whether the principal may run the agent named <paramref name="agent"/>: any, or one its patterns match (<c>*</c> for any characters).</summary>
    public bool MayRun(string agent) => Allows(AgentPatterns, agent);

    /// <summary>Whether <paramref name="patterns"/> (none for any; <c>*</c> for any characters) allow the agent named <paramref name="agent"/>.</summary>
    public static bool Allows(IReadOnlyCollection<string> patterns, string agent) =>
        patterns.Count == 0 || patterns.Any(pattern => Regex.IsMatch(agent, "^" + Regex.Escape(pattern).Replace("\\*", ".*", StringComparison.Ordinal) + "$", RegexOptions.None, TimeSpan.FromMilliseconds(50)));

    /// <summary>The permissions each role grants.</summary>
    public static IReadOnlyDictionary<string, Permission[]> RolePermissions { get; } = new Dictionary<string, Permission[]>(StringComparer.Ordinal)
    {
        ["viewer"] = [Permission.ValidateAgents, Permission.ReadRuns],
        ["runner"] = [Permission.ValidateAgents, Permission.Execute, Permission.ReadRuns, Permission.CancelRuns],
        ["approver"] = [Permission.ReadRuns, Permission.ApproveToolCalls],
        ["inline"] = [Permission.RunInlineTools],
        ["auditor"] = [Permission.ReadAudit, Permission.ReadRuns],
        ["admin"] = [Permission.Admin],
    };

    /// <summary>The permission's name as errors and the access file say it (<c>read_runs</c>).</summary>
    public static string Name(Permission permission) => permission switch
    {
        Permission.ValidateAgents => "validate_agents",
        Permission.Execute => "execute",
        Permission.ReadRuns => "read_runs",
        Permission.CancelRuns => "cancel_runs",
        Permission.ApproveToolCalls => "approve_tool_calls",
        Permission.RunInlineTools => "run_inline_tools",
        Permission.ReadAudit => "read_audit",
        _ => "admin",
    };
}
