using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing;

namespace Namra.LlmGateway.Tests;

/// <summary>The scripted provider through the gateway, over gRPC on a real socket.</summary>
public sealed class ScriptedProviderTests : IAsyncLifetime
{
    private NamraTestHost _host = null!;
    private LlmGatewayService.LlmGatewayServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("llm-gateway");
        _client = new LlmGatewayService.LlmGatewayServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task StreamGenerate_StreamsTextThenToolCallPiecesThenTheCompletedTurn()
    {
        using var call = _client.StreamGenerate(Request([User("What is 2+2?")]));
        var events = new List<StreamGenerateResponse>();
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            events.Add(item);
        }

        var text = string.Concat(events.Where(e => e.EventCase == StreamGenerateResponse.EventOneofCase.TextDelta).Select(e => e.TextDelta.Text));
        var argumentPieces = events.Where(e => e.EventCase == StreamGenerateResponse.EventOneofCase.ToolCallDelta).Select(e => e.ToolCallDelta).ToList();
        var completed = events[^1].Completed;
        Assert.Equal("I'll compute that.", text);
        Assert.True(argumentPieces.Count > 1, "arguments should arrive in several pieces");
        Assert.Equal(("call_1_1", "calculator"), (argumentPieces[0].Id, argumentPieces[0].Name));
        Assert.Equal("{\"expression\":\"2+2\"}", string.Concat(argumentPieces.Select(p => p.ArgumentsJsonDelta)));
        Assert.Equal("{\"expression\":\"2+2\"}", Assert.Single(events, e => e.EventCase == StreamGenerateResponse.EventOneofCase.ToolCall).ToolCall.ArgumentsJson);
        Assert.Equal(StopReason.ToolUse, completed.StopReason);
        Assert.Equal(["I'll compute that.", "calculator"], completed.Message.Content.Select(c => c.Text.Length > 0 ? c.Text : c.ToolCall.Name));
        Assert.Equal(0, completed.Cost.TotalUsd);
        Assert.True(completed.Usage.InputTokens > 0 && completed.Usage.OutputTokens > 0);
    }

    [Fact]
    public async Task Generate_AfterAToolResult_ReplaysTheNextTurn()
    {
        var first = await _client.GenerateAsync(new GenerateRequest { Llm = Request([]).Llm, Messages = { User("What is 2+2?") } });
        var second = await _client.GenerateAsync(new GenerateRequest
        {
            Llm = Request([]).Llm,
            Messages =
            {
                User("What is 2+2?"),
                first.Message,
                new Message { Role = Role.Tool, Content = { new ContentBlock { ToolResult = new ToolResult { ToolCallId = "call_1_1", Content = "4" } } } },
            },
        });

        Assert.Equal(StopReason.EndTurn, second.StopReason);
        Assert.Equal("The answer is 4.", second.Message.Content.Single().Text);
        Assert.Equal("scripted", second.Model);
    }

    [Fact]
    public async Task Generate_IsDeterministic()
    {
        var one = await _client.GenerateAsync(new GenerateRequest { Llm = Request([]).Llm, Messages = { User("hi") } });
        var two = await _client.GenerateAsync(new GenerateRequest { Llm = Request([]).Llm, Messages = { User("hi") } });

        Assert.Equal(one, two);
    }

    [Fact]
    public async Task Generate_WhenScriptIsExhausted_FailsWithFailedPrecondition()
    {
        var assistant = new Message { Role = Role.Assistant, Content = { new ContentBlock { Text = "x" } } };

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(new GenerateRequest
        {
            Llm = Request([]).Llm,
            Messages = { User("hi"), assistant, User("again"), assistant, assistant },
        }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("2 turn(s)", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generate_WhenRequestIsIncomplete_NamesTheField()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(new GenerateRequest { Llm = Request([]).Llm }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("messages", Assert.Single(Assert.Single(RpcDetails.Of<Google.Rpc.BadRequest>(error)).FieldViolations).Field);
    }

    [Fact]
    public async Task ListModels_IncludesPricesAndCountTokensEstimates()
    {
        var models = await _client.ListModelsAsync(new ListModelsRequest { Provider = LlmProvider.Anthropic });
        var count = await _client.CountTokensAsync(new CountTokensRequest { Llm = Request([]).Llm, Messages = { User(new string('x', 400)) } });

        var sonnet = Assert.Single(models.Models, m => m.Model == "claude-sonnet-4-5");
        Assert.Equal((3, 15), (sonnet.Pricing.InputPerMtok, sonnet.Pricing.OutputPerMtok));
        Assert.All(models.Models, m => Assert.Equal(LlmProvider.Anthropic, m.Provider));
        Assert.True(count.Estimated);
        Assert.InRange(count.InputTokens, 100, 110);
    }

    private static StreamGenerateRequest Request(Message[] messages)
    {
        var request = new StreamGenerateRequest
        {
            Llm = new LlmConfig
            {
                Provider = LlmProvider.Scripted,
                Model = "scripted",
                Script =
                {
                    new ScriptedTurn
                    {
                        Text = "I'll compute that.",
                        ToolCalls = { new ScriptedToolCall { Name = "calculator", ArgumentsJson = "{\"expression\":\"2+2\"}" } },
                    },
                    new ScriptedTurn { Text = "The answer is 4." },
                },
            },
        };
        request.Messages.AddRange(messages);
        return request;
    }

    private static Message User(string text) => new() { Role = Role.User, Content = { new ContentBlock { Text = text } } };
}
