using Google.Protobuf;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Namra.Contracts;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Cli.Tests;

/// <summary>
/// The audit log: every call to the public API, admitted or refused, and the access file's loading, chained by hash in
/// the store; the operator reads every tenant's entries and a tenant its own; <c>namra audit verify</c> says the chain
/// holds, and names the entry edited or removed in the database behind the server's back.
/// </summary>
[Collection(DataFolder.Collection)]
public sealed class AuditCliTests : IAsyncLifetime
{
    private const string Operator = "nk_operator_0501";
    private const string AcmeRunner = "nk_acme_runner_0502";
    private const string AcmeAuditor = "nk_acme_auditor_0503";
    private const string Calculator = InlineAgents.ScriptedAnswer;

    private readonly string _folder = Directory.CreateTempSubdirectory("namra-audit-").FullName;
    private NamraTestHost _host = null!;

    private string Database => Path.Combine(_folder, "memory.db");

    public async ValueTask InitializeAsync()
    {
        var keys = Path.Combine(_folder, "access.json");
        await File.WriteAllTextAsync(keys, $$"""
            { "keys": [
              { "id": "operator", "sha256": "{{Hash(Operator)}}", "roles": ["admin"] },
              { "id": "acme-runner", "sha256": "{{Hash(AcmeRunner)}}", "tenant": "acme", "roles": ["runner"] },
              { "id": "acme-auditor", "sha256": "{{Hash(AcmeAuditor)}}", "tenant": "acme", "roles": ["auditor"] } ] }
            """);
        _host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Orchestrator:ApiKeysFile"] = keys,
            ["Namra:Memory:SqlitePath"] = Database,
            ["Namra:Memory:DefaultStore"] = "sqlite",
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        Environment.SetEnvironmentVariable("NAMRA_API_KEY", null);
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task EveryCall_IsChained_TheOperatorSeesAll_ATenantItsOwn_AndVerifyFindsWhatWasEditedOrRemoved()
    {
        var client = new AgentService.AgentServiceClient(_host.Channel);
        var run = (await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Calculator), Input = "1+1" }, Key(AcmeRunner))).Run;
        var denied = await Assert.ThrowsAsync<RpcException>(() => client.ListAuditAsync(new ListAuditRequest(), Key(AcmeRunner)).ResponseAsync);
        await Assert.ThrowsAsync<RpcException>(() => client.ListRunsAsync(new ListRunsRequest()).ResponseAsync);

        // Written off the calls' path, within moments.
        var all = (await Eventually.HoldsAsync(() => client.ListAuditAsync(new ListAuditRequest(), Key(Operator)).ResponseAsync,
            listed => listed.Entries.Any(e => e.Outcome == "UNAUTHENTICATED"), what: "the calls' audit entries")).Entries;
        var acme = (await client.ListAuditAsync(new ListAuditRequest(), Key(AcmeAuditor))).Entries;

        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Empty(AuditChain.Problems(all));
        Assert.Equal("access.loaded", all[0].Action);
        Assert.Contains("acme-runner (acme: runner)", all[0].Detail, StringComparison.Ordinal);
        var execute = Assert.Single(all, e => e.Action == "Execute");
        Assert.Equal(("acme-runner", "acme", "calc_agent", run.RunId, "OK"), (execute.Principal, execute.Tenant, execute.Agent, execute.RunId, execute.Outcome));
        Assert.True(execute.Tokens > 0);
        Assert.Equal("run completed", execute.Detail);
        var refusal = Assert.Single(all, e => e.Action == "ListAudit" && e.Outcome == "PERMISSION_DENIED");
        Assert.Equal("acme-runner", refusal.Principal);
        Assert.Contains(all, e => e.Action == "ListRuns" && e.Outcome == "UNAUTHENTICATED" && e.Principal == "unknown");
        Assert.NotEmpty(acme);
        Assert.All(acme, e => Assert.Equal("acme", e.Tenant));

        Environment.SetEnvironmentVariable("NAMRA_API_KEY", Operator);
        var holds = await VerifyAsync();
        Edit(execute.Sequence, entry => entry.Outcome = "PERMISSION_DENIED");
        var edited = await VerifyAsync();
        await ExecuteSqlAsync($"DELETE FROM namra_audit WHERE seq = {refusal.Sequence}");
        var removed = await VerifyAsync();

        Assert.True(holds.ExitCode == 0, holds.Error);
        Assert.Contains("The audit log holds", holds.Output, StringComparison.Ordinal);
        Assert.Equal(1, edited.ExitCode);
        Assert.Contains($"entry {execute.Sequence}: its content does not match its hash (it was edited)", edited.Error, StringComparison.Ordinal);
        Assert.Equal(1, removed.ExitCode);
        Assert.Contains($"entry {refusal.Sequence} is missing", removed.Error, StringComparison.Ordinal);
    }

    private void Edit(long sequence, Action<AuditEntry> change)
    {
        using var connection = new SqliteConnection($"Data Source={Database}");
        connection.Open();
        using var read = connection.CreateCommand();
        read.CommandText = $"SELECT body FROM namra_audit WHERE seq = {sequence}";
        var entry = AuditEntry.Parser.ParseFrom((byte[])read.ExecuteScalar()!);
        change(entry); // the hash is left as it was
        using var write = connection.CreateCommand();
        write.CommandText = $"UPDATE namra_audit SET body = $body WHERE seq = {sequence}";
        write.Parameters.AddWithValue("$body", entry.ToByteArray());
        write.ExecuteNonQuery();
    }

    private async Task ExecuteSqlAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={Database}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<(int ExitCode, string Output, string Error)> VerifyAsync()
    {
        Environment.SetEnvironmentVariable("NAMRA_DATA_DIR", Path.Combine(_folder, "data"));
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exitCode = await NamraCli.RunAsync(["audit", "verify", "--server", $"http://{_host.Channel.Target}"], CliConsole.Create(output, error, color: false, _folder), TextReader.Null);
        return (exitCode, output.ToString(), error.ToString());
    }

    private static string Hash(string key) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)));

    private static Metadata Key(string key) => new() { { "authorization", $"Bearer {key}" } };
}
