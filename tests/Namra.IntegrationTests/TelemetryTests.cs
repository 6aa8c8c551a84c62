using System.Collections.Concurrent;
using System.Diagnostics;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.IntegrationTests;

/// <summary>One trace across a gRPC hop, and service metrics on the Prometheus endpoint.</summary>
public sealed class TelemetryTests
{
    private const string Agent = "name: traced\nversion: 1.0.0\nllm: { provider: openai, model: m }\n";

    [Fact]
    public async Task Call_CarriesTheCallersTraceToTheServerSpans()
    {
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Namra.Config" or "Namra.Tests",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        using var source = new ActivitySource("Namra.Tests");
        await using var host = await NamraTestHost.StartAsync("config");

        ActivityTraceId traceId;
        using (var caller = source.StartActivity("caller"))
        {
            traceId = caller!.TraceId;
            await new ConfigService.ConfigServiceClient(host.Channel).ValidateAgentDefinitionAsync(
                new ValidateAgentDefinitionRequest { Agent = new InlineAgent { Content = Agent, FileName = "a.yaml" } });
        }

        var span = Assert.Single(stopped, a => a.OperationName == "validate_agent");
        Assert.Equal(traceId, span.TraceId);
        Assert.Equal("traced", span.GetTagItem("namra.agent.name"));
        Assert.Equal("valid", span.GetTagItem("namra.result"));
    }

    [Fact]
    public async Task Metrics_ExportTheServicesOwnMeters()
    {
        await using var host = await NamraTestHost.StartAsync("config");
        await new ConfigService.ConfigServiceClient(host.Channel).ValidateAgentDefinitionAsync(
            new ValidateAgentDefinitionRequest { Agent = new InlineAgent { Content = "name: 1\n", FileName = "a.yaml" } });

        var scrape = await host.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));

        // The registry is per process and other tests validate too: at least this call is counted.
        Assert.Matches("(?m)^namra_config_validations_total\\{result=\"invalid\",format=\"yaml\"\\} [1-9][0-9]*$", scrape);
        Assert.Matches("(?m)^namra_config_validation_duration_seconds_count\\{format=\"yaml\"\\} [1-9][0-9]*$", scrape);
    }
}
