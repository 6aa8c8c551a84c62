using System.CommandLine;
using Grpc.Core;
using Namra.Cli.Running;
using Namra.Contracts;
using Namra.Contracts.V1;
using Spectre.Console;

namespace Namra.Cli.Commands;

/// <summary>
/// <c>namra audit verify</c>: reads a server's audit log through its API (<c>ListAudit</c>, the <c>read_audit</c>
/// permission) and checks its hash chain here: every entry's hash, the numbering, and each entry's link to the one before.
/// An entry edited, removed or inserted in the store is reported by its number; the exit code is 1 then.
/// </summary>
internal static class AuditCommand
{
    private const int Broken = 1;

    public static Command Create(CliConsole console)
    {
        var server = new Option<string>("--server", "-s") { Description = "The orchestrator's gRPC address; NAMRA_API_KEY is the caller's key (or token).", Required = true };
        var verify = new Command("verify", "Check the audit log's hash chain, entry by entry.") { server };
        verify.SetAction(async (parse, cancellationToken) =>
        {
            await using var runner = AgentRunner.Remote(parse.GetRequiredValue(server));
            var problems = new List<string>();
            AuditEntry? last = null;
            var count = 0L;
            try
            {
                var more = true;
                while (more)
                {
                    var page = await runner.Client.ListAuditAsync(new ListAuditRequest { AfterSequence = last?.Sequence ?? 0, PageSize = 1000 }, cancellationToken: cancellationToken).ConfigureAwait(false);
                    problems.AddRange(AuditChain.Problems(page.Entries, last));
                    count += page.Entries.Count;
                    last = page.Entries.Count > 0 ? page.Entries[^1] : last;
                    more = page.More && page.Entries.Count > 0;
                }
            }
            catch (RpcException exception)
            {
                console.Error.WriteLine($"namra: {exception.Status.Detail} ({exception.StatusCode})");
                return RunCommand.UsageError;
            }

            if (problems.Count > 0)
            {
                foreach (var problem in problems)
                {
                    console.Error.WriteLine($"namra: {problem}");
                }

                console.Error.WriteLine($"namra: the audit log does not hold: {problems.Count} problem(s) in {count:N0} entries.");
                return Broken;
            }

            console.Out.WriteLine(count == 0 ? "The audit log is empty." : $"The audit log holds: {count:N0} entries, 1 to {last!.Sequence:N0}, each hashed and linked to the one before (last hash {last.Hash}).");
            return 0;
        });
        return new Command("audit", "The server's audit log.") { verify };
    }
}
