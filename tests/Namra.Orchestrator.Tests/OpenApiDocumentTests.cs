using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// The orchestrator serves the OpenAPI document committed in <c>schemas/openapi.v1.json</c>; it must be the one the
/// protos describe today. After changing the public API, regenerate it with
/// <c>NAMRA_WRITE_OPENAPI=1 dotnet test tests/Namra.Orchestrator.Tests --filter OpenApiDocumentTests</c>, then the typed
/// client of <c>tests/openapi-client</c> (<c>OpenApiClientTests</c> says how).
/// </summary>
public sealed class OpenApiDocumentTests
{
    private static readonly string Committed = RepositoryPaths.Combine("schemas", "openapi.v1.json");

    [Fact]
    public async Task TheCommittedDocument_IsTheOneTheProtosDescribe()
    {
        var generated = await OpenApiDocumentGenerator.GenerateAsync();
        if (Environment.GetEnvironmentVariable("NAMRA_WRITE_OPENAPI") == "1")
        {
            await File.WriteAllTextAsync(Committed, generated, TestContext.Current.CancellationToken);
        }

        Assert.True(generated == await File.ReadAllTextAsync(Committed, TestContext.Current.CancellationToken),
            "schemas/openapi.v1.json is not what the protos describe: regenerate it with NAMRA_WRITE_OPENAPI=1 dotnet test tests/Namra.Orchestrator.Tests --filter OpenApiDocumentTests.");
    }
}
