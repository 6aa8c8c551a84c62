using System.Collections;
using System.Reflection;
using System.Text;
using Google.Protobuf;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Namra.Cli.Running;
using Namra.Contracts.V1;
using Namra.Hosting;
using Namra.Server;
using Namra.Testing;

namespace Namra.Cli.Tests;

/// <summary>
/// The service container closes open generic registrations (<c>IOptions&lt;T&gt;</c>, <c>ILogger&lt;T&gt;</c>, ...) with
/// <c>MakeGenericType</c> as services are asked for. A NativeAOT build has those types' code, but not the types
/// themselves, unless told: its runtime then builds each one while the host starts (14 ms of a NativeAOT `namra run`).
/// The directives <c>services/Namra.Server/NativeAot.Services.rd.xml</c> name every type the container closed in an
/// embedded run, and in a server's start, health check and runs over gRPC and REST. Likewise
/// <c>NativeAot.Endpoints.rd.xml</c> names the types grpc-dotnet makes for each gRPC method as a server maps its
/// endpoints (call handlers, method invokers, interceptor pipelines: 25 ms of a NativeAOT server's start when built as
/// it went). They must name every one of them: after adding a service or a method, regenerate them with
/// <c>NAMRA_WRITE_RDXML=1 dotnet test tests/Namra.Cli.Tests --filter NativeAotServiceDirectivesTests</c>.
/// </summary>
[Collection(DataFolder.Collection)]
public sealed class NativeAotServiceDirectivesTests : IDisposable
{
    private static readonly string Committed = RepositoryPaths.Combine("services", "Namra.Server", "NativeAot.Services.rd.xml");
    private static readonly string CommittedEndpoints = RepositoryPaths.Combine("services", "Namra.Server", "NativeAot.Endpoints.rd.xml");

    private readonly string _folder = Directory.CreateTempSubdirectory("namra-rdxml-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task TheDirectives_NameEveryGenericTypeTheContainerAndTheGrpcEndpointsMakeInAnEmbeddedRunAndAServer()
    {
        Environment.SetEnvironmentVariable("NAMRA_DATA_DIR", Path.Combine(_folder, "data"));
        var agent = RepositoryPaths.Combine("examples", "agents", "calculator.yaml");
        var source = new AgentSource { Inline = new InlineAgent { Content = await File.ReadAllTextAsync(agent, TestContext.Current.CancellationToken), FileName = "calculator.yaml" } };
        var request = new ExecuteRequest { Agent = source, Input = "What is (17 + 25) * 2?" };
        var types = new SortedSet<Type>(Comparer<Type>.Create((a, b) => string.CompareOrdinal(Name(a), Name(b))));
        var endpointTypes = new SortedSet<Type>(types.Comparer);

        // namra run: the embedded services.
        await using (var runner = await AgentRunner.StartEmbeddedAsync(TestContext.Current.CancellationToken, Path.GetDirectoryName(agent)))
        {
            var last = await runner.StreamAsync(new ExecuteStreamRequest { Agent = source, Input = request.Input }, _ => Task.CompletedTask, TestContext.Current.CancellationToken);
            Assert.Equal(RunEvent.EventOneofCase.RunCompleted, last?.EventCase);
            types.UnionWith(ClosedByTheContainer(runner.EmbeddedServices!));
        }

        // namra-server, built as its Program builds it: health, a run over gRPC and one over REST.
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Namra:Host:ListenAddress"] = "127.0.0.1",
            ["Namra:Host:GrpcPort"] = "0",
            ["Namra:Host:HttpPort"] = "0",
            ["Namra:Memory:SqlitePath"] = Path.Combine(_folder, "server.db"),
        });
        await using (var server = NamraComposition.Build(builder))
        {
            await server.StartAsync(TestContext.Current.CancellationToken);
            var endpoints = server.Services.GetRequiredService<NamraEndpoints>();
            using var channel = GrpcChannel.ForAddress(endpoints.GrpcAddress);
            var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), cancellationToken: TestContext.Current.CancellationToken);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
            var run = await new AgentService.AgentServiceClient(channel).ExecuteAsync(request, cancellationToken: TestContext.Current.CancellationToken);
            Assert.Equal(RunStatus.Completed, run.Run.Status);
            using var http = new HttpClient { BaseAddress = endpoints.HttpAddress };
            using var rest = await http.PostAsync(new Uri("/v1/agents/execute", UriKind.Relative),
                new StringContent(JsonFormatter.Default.Format(request), Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
            Assert.True(rest.IsSuccessStatusCode, $"REST execute answered {(int)rest.StatusCode}");
            types.UnionWith(ClosedByTheContainer(server.Services));
            endpointTypes.UnionWith(ClosedByTheEndpoints(server.Services));
            await server.StopAsync(TestContext.Current.CancellationToken);
        }

        endpointTypes.ExceptWith(types);
        if (Environment.GetEnvironmentVariable("NAMRA_WRITE_RDXML") == "1")
        {
            await File.WriteAllTextAsync(Committed, Directives(types, "The generic types the service container closes at run time, for NativeAOT builds of namra and namra-server."), TestContext.Current.CancellationToken);
            await File.WriteAllTextAsync(CommittedEndpoints, Directives(endpointTypes, "The generic types of namra-server's gRPC endpoints (handlers, invokers, pipelines), for its NativeAOT build."), TestContext.Current.CancellationToken);
        }

        // Every type must be named; a name more (a service asked for on another run's timing) costs only a little size.
        await AssertNamedAsync(Committed, types, "the container closed");
        await AssertNamedAsync(CommittedEndpoints, endpointTypes, "the gRPC endpoints are made of");
    }

    private static async Task AssertNamedAsync(string path, IEnumerable<Type> types, string what)
    {
        var committed = await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken);
        var missing = types.Select(Name).Where(name => !committed.Contains($"<Type Name=\"{System.Security.SecurityElement.Escape(name)}\"", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0,
            $"{Path.GetRelativePath(RepositoryPaths.Root, path)} misses {missing.Count} types {what} ({string.Join(", ", missing.Take(3))}): "
            + "regenerate it with NAMRA_WRITE_RDXML=1 dotnet test tests/Namra.Cli.Tests --filter NativeAotServiceDirectivesTests.");
    }

    // The container keeps what it built for every service asked for (its call sites); the closed generic types among
    // them, and the arrays it made for IEnumerable<T>, are what a NativeAOT runtime would otherwise build as it goes.
    private static List<Type> ClosedByTheContainer(IServiceProvider services)
    {
        const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        var factory = services.GetType().GetProperty("CallSiteFactory", Instance)?.GetValue(services)
            ?? throw new InvalidOperationException($"{services.GetType()} has no CallSiteFactory: the container's internals changed; update this generator.");
        var cache = factory.GetType().GetField("_callSiteCache", Instance)?.GetValue(factory) as IDictionary
            ?? throw new InvalidOperationException("The call site factory has no _callSiteCache: the container's internals changed; update this generator.");

        var types = new List<Type>();
        foreach (var site in cache.Values.Cast<object>())
        {
            var serviceType = (Type)site.GetType().GetProperty("ServiceType")!.GetValue(site)!;
            var implementation = site.GetType().GetProperty("ImplementationType")!.GetValue(site) as Type;
            if (implementation is { IsConstructedGenericType: true } && !implementation.ContainsGenericParameters && IsShipped(implementation))
            {
                types.Add(implementation);
            }

            if (serviceType is { IsConstructedGenericType: true } && serviceType.GetGenericTypeDefinition() == typeof(IEnumerable<>)
                && serviceType.GetGenericArguments()[0] is { ContainsGenericParameters: false } element && IsShipped(element))
            {
                types.Add(element.MakeArrayType());
            }
        }

        return types;
    }

    // Each gRPC endpoint's handler, its method invoker, interceptor pipeline and delegates are generic over the method's
    // request and response: grpc-dotnet makes them while the endpoints are mapped, through a generic virtual call per
    // method, and a NativeAOT runtime would build each type then. They are read from the handlers' object graphs.
    private static List<Type> ClosedByTheEndpoints(IServiceProvider services)
    {
        const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        var types = new List<Type>();
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        void Walk(object? value, int depth)
        {
            if (value is null || depth > 6 || value.GetType().IsPrimitive || value is string || !seen.Add(value))
            {
                return;
            }

            var type = value.GetType();
            if (type is { IsConstructedGenericType: true, ContainsGenericParameters: false } && IsShipped(type) && !IsCompiledAlready(type))
            {
                types.Add(type);
            }

            // Into gRPC's and Namra's own objects and delegates only: not into the container, loggers or options.
            var assembly = type.Assembly.GetName().Name!;
            if (value is Delegate callback)
            {
                Walk(callback.Target, depth + 1);
            }
            else if (assembly.StartsWith("Grpc.", StringComparison.Ordinal) || assembly.StartsWith("Namra.", StringComparison.Ordinal)
                || assembly == "Microsoft.AspNetCore.Grpc.JsonTranscoding")
            {
                for (var declaring = type; declaring is not null && declaring != typeof(object); declaring = declaring.BaseType)
                {
                    foreach (var field in declaring.GetFields(Instance | BindingFlags.DeclaredOnly))
                    {
                        if (!field.FieldType.IsValueType)
                        {
                            Walk(field.GetValue(value), depth + 1);
                        }
                    }
                }
            }
        }

        foreach (var endpoint in services.GetRequiredService<Microsoft.AspNetCore.Routing.EndpointDataSource>().Endpoints)
        {
            Walk(endpoint.RequestDelegate, 0);
        }

        return types;
    }

    // The generated gRPC code makes each method's Method<,>, marshallers and their Func<,> delegates in static fields,
    // with the types written out, so the compiler has them already, as it has the collections the handlers keep.
    // Naming them too made the server's binary 25 MB larger and its start slower.
    private static bool IsCompiledAlready(Type type) =>
        type.Assembly == typeof(object).Assembly || type.Assembly == typeof(Grpc.Core.Method<,>).Assembly
        || type.Assembly == typeof(System.Collections.Concurrent.ConcurrentDictionary<,>).Assembly;

    // What a test adds to the container is not in the CLI.
    private static bool IsShipped(Type type) =>
        !type.Assembly.GetName().Name!.EndsWith(".Tests", StringComparison.Ordinal)
        && (!type.IsConstructedGenericType || type.GetGenericArguments().All(IsShipped))
        && (type.GetElementType() is not { } element || IsShipped(element));

    private static string Directives(IEnumerable<Type> types, string what)
    {
        var xml = new StringBuilder();
        xml.Append($"""
            <!-- Generated by tests/Namra.Cli.Tests/NativeAotServiceDirectivesTests.cs: do not edit.
                 {what} -->
            <Directives xmlns="http://schemas.microsoft.com/netfx/2013/01/metadata">
              <Application>

            """);
        foreach (var assembly in types.GroupBy(type => Home(type).Assembly.GetName().Name!).OrderBy(group => group.Key, StringComparer.Ordinal))
        {
            xml.Append($"    <Assembly Name=\"{assembly.Key}\">\n");
            foreach (var type in assembly)
            {
                xml.Append($"      <Type Name=\"{System.Security.SecurityElement.Escape(Name(type))}\" Dynamic=\"Required All\" />\n");
            }

            xml.Append("    </Assembly>\n");
        }

        xml.Append("  </Application>\n</Directives>\n");
        return xml.ToString();
    }

    // An array's home is its element's assembly; a generic type's, its definition's.
    private static Type Home(Type type) => type.IsArray ? Home(type.GetElementType()!) : type.IsConstructedGenericType ? type.GetGenericTypeDefinition() : type;

    // The directives' type names: List`1[[System.Int32,System.Private.CoreLib]].
    private static string Name(Type type) =>
        type.IsArray ? Name(type.GetElementType()!) + "[]"
        : type.IsConstructedGenericType
            ? type.GetGenericTypeDefinition().FullName + "[" + string.Join(",", type.GetGenericArguments().Select(argument => $"[{Name(argument)},{argument.Assembly.GetName().Name}]")) + "]"
            : type.FullName!;
}
