using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Hosting.Roles;
using Namra.Hosting;
using Namra.Testing.Telemetry;
using Namra.Testing;

namespace Namra.IntegrationTests;

/// <summary>What every Namra process serves, whatever its roles: health, reflection, metrics, error mapping, drain.</summary>
public sealed class ServerHostingTests
{
    [Fact]
    public async Task Health_WhenRunning_IsServing()
    {
        await using var host = await NamraTestHost.StartAsync("config");

        var response = await new Health.HealthClient(host.Channel).CheckAsync(new HealthCheckRequest());

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, response.Status);
    }

    [Fact]
    public async Task RequestLogs_OfTheWebFramework_AreOffByDefault_AndASettingTurnsThemOn()
    {
        var quietLines = new CapturedLogs();
        var verboseLines = new CapturedLogs();
        await using var quiet = await NamraTestHost.StartAsync("config", configure: builder => builder.Logging.AddProvider(quietLines));
        await using var verbose = await NamraTestHost.StartAsync("config", new Dictionary<string, string?> { ["Logging:LogLevel:Microsoft.AspNetCore"] = "Information" },
            builder => builder.Logging.AddProvider(verboseLines));

        await new Health.HealthClient(quiet.Channel).CheckAsync(new HealthCheckRequest());
        await new Health.HealthClient(verbose.Channel).CheckAsync(new HealthCheckRequest());

        Assert.DoesNotContain(quietLines.Categories, c => c.StartsWith("Microsoft.AspNetCore.", StringComparison.Ordinal));
        Assert.Contains("Microsoft.AspNetCore.Hosting.Diagnostics", verboseLines.Categories);
        Assert.Contains(quietLines.Categories, c => c == "Namra.Hosting"); // the service's own Information lines still show
    }

    [Fact]
    public async Task Reflection_ListsEveryHostedService()
    {
        await using var host = await NamraTestHost.StartAsync("all");
        using var call = new ServerReflection.ServerReflectionClient(host.Channel).ServerReflectionInfo();

        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();

        Assert.Contains("namra.v1.ConfigService", services);
        Assert.Contains("namra.v1.LlmGatewayService", services);
        Assert.Contains("namra.v1.ToolExecutorService", services);
        Assert.Contains("namra.v1.MemoryService", services);
        Assert.Contains("namra.v1.AgentService", services);
        Assert.Contains("grpc.health.v1.Health", services);
    }

    [Fact]
    public async Task EveryMethodOfEveryHostedService_HasItsGrpcEndpoint_AndOnlyThePublicApiIsTranscoded()
    {
        await using var host = await NamraTestHost.StartAsync("all");
        var endpoints = host.Services.GetRequiredService<Microsoft.AspNetCore.Routing.EndpointDataSource>().Endpoints;
        var grpc = endpoints.Select(e => e.Metadata.GetMetadata<Grpc.AspNetCore.Server.GrpcMethodMetadata>())
            .OfType<Grpc.AspNetCore.Server.GrpcMethodMetadata>()
            .Select(m => m.Method.FullName)
            .ToList();
        var roles = host.Services.GetRequiredService<NamraRoles>().EnabledRoles.ToList();

        Assert.Equal(5, roles.Count);
        foreach (var method in roles.SelectMany(role => role.Service.Methods))
        {
            // Served once: as gRPC, plus once as REST where the method has a rule.
            var served = grpc.Count(name => name == $"/{method.Service.FullName}/{method.Name}");
            var rest = method.GetOptions()?.GetExtension(Google.Api.AnnotationsExtensions.Http) is null ? 0 : 1;
            Assert.True(served == 1 + rest, $"{method.FullName} has {served} endpoints, expected {1 + rest}");
        }

        var transcoded = endpoints.Select(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Grpc.JsonTranscoding.GrpcJsonTranscodingMetadata>()).OfType<Microsoft.AspNetCore.Grpc.JsonTranscoding.GrpcJsonTranscodingMetadata>().ToList();
        Assert.Equal(10, transcoded.Count);
        Assert.All(transcoded, t => Assert.Equal("namra.v1.AgentService", t.MethodDescriptor.Service.FullName));
        Assert.DoesNotContain(host.Services.GetServices<Grpc.AspNetCore.Server.Model.IServiceMethodProvider<Grpc.Reflection.ReflectionServiceImpl>>(),
            provider => provider.GetType().Name.StartsWith("JsonTranscoding", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Roles_WhenOnlyConfigIsHosted_OtherServicesAreNotMapped()
    {
        await using var host = await NamraTestHost.StartAsync("config");

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            new MemoryService.MemoryServiceClient(host.Channel).GetHistoryAsync(new GetHistoryRequest { SessionId = "s" }).ResponseAsync);

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
        Assert.Equal("Service is unimplemented.", error.Status.Detail);
    }

    [Fact]
    public async Task Metrics_CountCallsByMethodAndStatusCode()
    {
        await using var host = await NamraTestHost.StartAsync("config");
        var client = new ConfigService.ConfigServiceClient(host.Channel);
        await Assert.ThrowsAsync<RpcException>(() => client.GetAgentAsync(new GetAgentRequest { Reference = "nobody_metrics" }).ResponseAsync);

        var scrape = new PrometheusScrape(await host.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative)));

        (string, string)[] call = [("grpc_type", "unary"), ("grpc_service", "namra.v1.ConfigService"), ("grpc_method", "GetAgent")];
        Assert.True(scrape.Value("grpc_server_started_total", call) >= 1);
        Assert.True(scrape.Value("grpc_server_handled_total", [.. call, ("grpc_code", "NotFound")]) >= 1);
        Assert.True(scrape.Value("grpc_server_handling_seconds_bucket", [.. call, ("le", "+Inf")]) >= 1);
        Assert.Contains("# TYPE grpc_server_handled_total counter", scrape.Text, StringComparison.Ordinal);
        Assert.Contains("# TYPE grpc_server_handling_seconds histogram", scrape.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnexpectedException_BecomesInternalWithTraceIdAndNoStackTrace()
    {
        await using var host = await NamraTestHost.StartAsync("config", build: builder =>
        {
            builder.AddNamraDefaults(NamraRoles.Parse("config", Namra.Server.NamraComposition.Roles));
            builder.ListenOnNamraPorts();
            var app = builder.Build();
            app.MapNamraDefaults();
            app.MapGrpcService<ThrowingConfigService>();
            return app;
        });

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            new ConfigService.ConfigServiceClient(host.Channel).GetAgentAsync(new GetAgentRequest { Reference = "x" }).ResponseAsync);

        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.DoesNotContain("secret-internal-detail", error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", error.Status.Detail, StringComparison.Ordinal);
        var info = Assert.Single(RpcDetails.Of<Google.Rpc.ErrorInfo>(error));
        Assert.Contains(info.Metadata["trace_id"], error.Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Namra:Host:ListenAddress", "not-an-ip", "ListenAddress")]
    [InlineData("Namra:Host:ShutdownTimeout", "01:00:00", "ShutdownTimeout")]
    [InlineData("Namra:Config:AgentsPath", "/nonexistent/namra/agents", "AgentsPath")]
    public async Task Start_WhenSettingsAreInvalid_RefusesToStartNamingTheSetting(string key, string value, string named)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() =>
            NamraTestHost.StartAsync("config", new Dictionary<string, string?> { [key] = value }));

        Assert.Contains(error.Failures, failure => failure.Contains(named, StringComparison.Ordinal));
    }

    [Fact]
    public void Roles_WhenNameIsUnknown_RefuseWithTheKnownNames()
    {
        var error = Assert.Throws<OptionsValidationException>(() => NamraRoles.Parse("config,llm_gateway", Namra.Server.NamraComposition.Roles, "--services"));

        Assert.Contains("'llm_gateway'", error.Message, StringComparison.Ordinal);
        Assert.Contains("llm-gateway", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stop_EndsOpenWatchStreamsCleanlyInsteadOfWaitingForThem()
    {
        var host = await NamraTestHost.StartAsync("config");
        var client = new ConfigService.ConfigServiceClient(host.Channel);
        using var watch = client.WatchAgents(new WatchAgentsRequest());
        await watch.ResponseHeadersAsync;
        var next = watch.ResponseStream.MoveNext(CancellationToken.None);

        var stopping = host.StopAsync();

        Assert.False(await next.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(StatusCode.OK, watch.GetStatus().StatusCode);
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));
        await host.DisposeAsync();
    }

    [Fact]
    public async Task Stop_WithDrainDelay_ReportsNotServingWhileStillAnswering()
    {
        var host = await NamraTestHost.StartAsync("config", new Dictionary<string, string?> { ["Namra:Host:DrainDelay"] = "00:00:02" });
        var drain = (DrainState)host.Services.GetService(typeof(DrainState))!;
        var health = new Health.HealthClient(host.Channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);

        var stopping = host.StopAsync();
        await drain.Draining.WaitAsync(TimeSpan.FromSeconds(10));
        var during = await health.CheckAsync(new HealthCheckRequest());

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, during.Status);
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));
        await host.DisposeAsync();
    }

    private sealed class ThrowingConfigService : ConfigService.ConfigServiceBase
    {
        public override Task<GetAgentResponse> GetAgent(GetAgentRequest request, ServerCallContext context) =>
            throw new InvalidOperationException("secret-internal-detail");
    }
}
