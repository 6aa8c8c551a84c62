using Namra.Testing.Telemetry;
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

        // The listener hears the whole process, and other tests validate agents at the same time: pick this trace's span.
        var span = Assert.Single(stopped, a => a.OperationName == "validate_agent" && a.TraceId == traceId);
        Assert.Equal("traced", span.GetTagItem("namra.agent.name"));
        Assert.Equal("valid", span.GetTagItem("namra.result"));
    }

    [Fact]
    public async Task Metrics_ExportTheServicesOwnMeters()
    {
        await using var host = await NamraTestHost.StartAsync("config");
        await new ConfigService.ConfigServiceClient(host.Channel).ValidateAgentDefinitionAsync(
            new ValidateAgentDefinitionRequest { Agent = new InlineAgent { Content = "name: 1\n", FileName = "a.yaml" } });

        var scrape = new PrometheusScrape(await host.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative)));

        // The meters are per process and other tests validate too: at least this call is counted.
        Assert.True(scrape.Value("namra_config_validations_total", ("result", "invalid"), ("format", "yaml")) >= 1);
        Assert.True(scrape.Value("namra_config_validation_duration_seconds_count", ("format", "yaml")) >= 1);
        Assert.Contains("# TYPE namra_config_validations_total counter", scrape.Text, StringComparison.Ordinal);
    }
}

/// <summary>Labels whose values callers choose stay bounded: later values share one series.</summary>
public sealed class BoundedLabelTests
{
    [Fact]
    public void TheFirstValuesKeepTheirOwnSeries_LaterOnesShareOther_InParallelToo()
    {
        var label = new Namra.Hosting.Telemetry.BoundedLabel(100);

        var labels = Enumerable.Range(0, 1000).AsParallel().Select(i => label.Of($"agent-{i}")).ToList();
        var kept = labels.Where(l => l != "other").ToList();

        Assert.Equal(100, kept.Distinct().Count());
        Assert.Equal(900, labels.Count(l => l == "other"));
        Assert.All(kept, value => Assert.Equal(value, label.Of(value))); // a kept value keeps its series
        Assert.Equal("other", label.Of("agent-new"));
    }
}

/// <summary>A process with no exporter still makes trace ids and passes the sampling decision on.</summary>
public sealed class TracingWithoutExporterTests
{
    [Fact]
    public async Task WithoutAnExporter_NewTracesAreSampled_AndChildrenFollowTheirParent()
    {
        await using var host = await NamraTestHost.StartAsync("config");
        using var source = new ActivitySource("Namra.PropagationTests");

        using var root = source.StartActivity("root");
        var unsampledParent = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.None);
        using var child = source.StartActivity("child", ActivityKind.Server, unsampledParent);

        // Sampled, as the SDK's default sampler decides: a service called with this trace that does export keeps it.
        Assert.NotNull(root);
        Assert.True(root.Recorded);
        Assert.NotNull(child);
        Assert.Equal(unsampledParent.TraceId, child.TraceId);
        Assert.False(child.Recorded);
    }
}
