using System.Diagnostics;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// The REST API's OpenAPI document as a client generator sees it (<c>tests/openapi-client</c>, npm): it passes
/// Redocly's recommended rules, the typed client committed there is the one it generates today, and that client calls
/// every operation of the document against a running server, each answer checked against the document's schemas.
/// </summary>
public sealed class OpenApiClientTests : IAsyncLifetime
{
    private const string ApiKey = "openapi-client-key";
    private static readonly string Folder = RepositoryPaths.Combine("tests", "openapi-client");
    private readonly string _keys = Path.GetTempFileName();
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        RepositoryPaths.NpmFile("tests/openapi-client", "openapi-fetch/package.json");
        await File.WriteAllTextAsync(_keys, ApiKey + "\n");
        _host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Orchestrator:ApiKeysFile"] = _keys,
            ["Namra:Orchestrator:TrustInlineAgents"] = "true", // the cancel check runs an inline agent whose shell tool waits
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        File.Delete(_keys);
    }

    private string DocumentUrl => new Uri(_host.Http.BaseAddress!, "/openapi/v1.json").ToString();

    [Fact]
    public async Task TheDocument_PassesTheLinter()
    {
        var (code, output) = await NodeAsync("node_modules/.bin/redocly", "lint", DocumentUrl);

        Assert.True(code == 0, output);
        Assert.Contains("Your API description is valid", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheCommittedClient_IsTheOneTheDocumentGenerates()
    {
        var generated = Path.Combine(Path.GetTempPath(), $"namra-api-{Guid.NewGuid():N}.d.ts");
        try
        {
            var (code, output) = await NodeAsync("node_modules/.bin/openapi-typescript", DocumentUrl, "-o", generated);

            Assert.True(code == 0, output);
            Assert.True(await File.ReadAllTextAsync(Path.Combine(Folder, "generated", "namra-api.d.ts")) == await File.ReadAllTextAsync(generated),
                "The document changed: run `npm run generate` in tests/openapi-client against a server and commit generated/namra-api.d.ts.");
        }
        finally
        {
            File.Delete(generated);
        }
    }

    [Fact]
    public async Task TheTestsCalls_TypeCheckAgainstTheGeneratedClient()
    {
        var (code, output) = await NodeAsync("node_modules/.bin/tsc", "-p", ".");

        Assert.True(code == 0, output);
    }

    [Fact]
    public async Task TheGeneratedClient_CallsEveryOperation()
    {
        var (code, output) = await NodeAsync("node", "run-every-method.mjs");

        Assert.True(code == 0, output);
        Assert.Matches("openapi-client: [1-9][0-9]* passed, 0 failed, 0 skipped", output);
    }

    private async Task<(int Code, string Output)> NodeAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program.StartsWith("node_modules", StringComparison.Ordinal) ? Path.Combine(Folder, program) : program, arguments)
        {
            WorkingDirectory = Folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["NAMRA_URL"] = _host.Http.BaseAddress!.ToString();
        start.Environment["NAMRA_API_KEY"] = ApiKey;
        start.Environment["REDOCLY_TELEMETRY"] = "off";
        start.Environment["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(180));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await output + await error);
    }
}
