namespace Namra.Orchestrator.Loop;

/// <summary>This orchestrator process, as leases name it: unique per process, readable in a run record.</summary>
internal sealed class Replica
{
    public string Id { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}";
}
