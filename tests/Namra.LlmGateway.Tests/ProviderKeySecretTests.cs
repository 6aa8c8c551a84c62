using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.LlmGateway.Tests;

/// <summary>A provider's key (and address) read from the operator's secrets folder, as a mounted Kubernetes Secret gives them.</summary>
public sealed class ProviderKeySecretTests : IAsyncDisposable
{
    private readonly string _secrets = Directory.CreateTempSubdirectory("namra-provider-secrets-").FullName;

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_secrets, recursive: true);
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task TheGateway_ReadsTheProviderKeyFromTheSecretsFolder()
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Enqueue(AnthropicWire.TextTurn(10, 2, "Hi."));
        await File.WriteAllTextAsync(Path.Combine(_secrets, "ANTHROPIC_API_KEY"), "sk-ant-from-a-file\n");
        await File.WriteAllTextAsync(Path.Combine(_secrets, "ANTHROPIC_BASE_URL"), anthropic.BaseUrl.ToString());
        await using var host = await NamraTestHost.StartAsync("llm-gateway", new Dictionary<string, string?> { ["Namra:Secrets:Folder"] = _secrets });

        var response = await new LlmGatewayService.LlmGatewayServiceClient(host.Channel).GenerateAsync(new GenerateRequest
        {
            Llm = new LlmConfig { Provider = LlmProvider.Anthropic, Model = AnthropicWire.Model, MaxTokens = 64 },
            Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "Hello." } } } },
        });

        Assert.Equal("Hi.", response.Message.Content[0].Text);
        Assert.Equal("sk-ant-from-a-file", anthropic.Requests[0].Headers["x-api-key"]);
    }
}
