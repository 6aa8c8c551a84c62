using System.Collections;
using System.Reflection;
using System.Text;
using Namra.Cli.Running;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Cli.Tests;

/// <summary>
/// The service container closes open generic registrations (<c>IOptions&lt;T&gt;</c>, <c>ILogger&lt;T&gt;</c>, ...) with
/// <c>MakeGenericType</c> as services are asked for. A NativeAOT build has those types' code, but not the types
/// themselves, unless told: its runtime then builds each one while the host starts, about 0.2 ms apiece, most of the
/// embedded host's start. The directives <c>services/Namra.Server/NativeAot.Services.rd.xml</c> name every type the
/// container closed in an embedded run, and must follow the services: after adding one, regenerate them with
/// <c>NAMRA_WRITE_RDXML=1 dotnet test tests/Namra.Cli.Tests --filter NativeAotServiceDirectivesTests</c>.
/// </summary>
[Collection(DataFolder.Collection)]
public sealed class NativeAotServiceDirectivesTests : IDisposable
{
    private static readonly string Committed = RepositoryPaths.Combine("services", "Namra.Server", "NativeAot.Services.rd.xml");

    private readonly string _folder = Directory.CreateTempSubdirectory("namra-rdxml-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task TheDirectives_NameEveryGenericTypeTheContainerClosesInAnEmbeddedRun()
    {
        Environment.SetEnvironmentVariable("NAMRA_DATA_DIR", Path.Combine(_folder, "data"));
        var agent = RepositoryPaths.Combine("examples", "agents", "calculator.yaml");
        string generated;
        await using (var runner = await AgentRunner.StartEmbeddedAsync(TestContext.Current.CancellationToken, Path.GetDirectoryName(agent)))
        {
            var source = new AgentSource { Inline = new InlineAgent { Content = await File.ReadAllTextAsync(agent, TestContext.Current.CancellationToken), FileName = "calculator.yaml" } };
            var last = await runner.StreamAsync(new ExecuteStreamRequest { Agent = source, Input = "What is (17 + 25) * 2?" }, _ => Task.CompletedTask, TestContext.Current.CancellationToken);
            Assert.Equal(RunEvent.EventOneofCase.RunCompleted, last?.EventCase);
            generated = Directives(ClosedByTheContainer(runner.EmbeddedServices!));
        }

        if (Environment.GetEnvironmentVariable("NAMRA_WRITE_RDXML") == "1")
        {
            await File.WriteAllTextAsync(Committed, generated, TestContext.Current.CancellationToken);
        }

        Assert.True(generated == await File.ReadAllTextAsync(Committed, TestContext.Current.CancellationToken),
            "services/Namra.Server/NativeAot.Services.rd.xml does not follow the services: regenerate it with NAMRA_WRITE_RDXML=1 dotnet test tests/Namra.Cli.Tests --filter NativeAotServiceDirectivesTests.");
    }

    // The container keeps what it built for every service asked for (its call sites); the closed generic types among
    // them, and the arrays it made for IEnumerable<T>, are what a NativeAOT runtime would otherwise build as it goes.
    private static SortedSet<Type> ClosedByTheContainer(IServiceProvider services)
    {
        const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        var factory = services.GetType().GetProperty("CallSiteFactory", Instance)?.GetValue(services)
            ?? throw new InvalidOperationException($"{services.GetType()} has no CallSiteFactory: the container's internals changed; update this generator.");
        var cache = factory.GetType().GetField("_callSiteCache", Instance)?.GetValue(factory) as IDictionary
            ?? throw new InvalidOperationException("The call site factory has no _callSiteCache: the container's internals changed; update this generator.");

        var types = new SortedSet<Type>(Comparer<Type>.Create((a, b) => string.CompareOrdinal(Name(a), Name(b))));
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

    // What a test adds to the container is not in the CLI.
    private static bool IsShipped(Type type) =>
        !type.Assembly.GetName().Name!.EndsWith(".Tests", StringComparison.Ordinal)
        && (!type.IsConstructedGenericType || type.GetGenericArguments().All(IsShipped))
        && (type.GetElementType() is not { } element || IsShipped(element));

    private static string Directives(IEnumerable<Type> types)
    {
        var xml = new StringBuilder();
        xml.Append("""
            <!-- Generated by tests/Namra.Cli.Tests/NativeAotServiceDirectivesTests.cs: do not edit.
                 The generic types the service container closes at run time, for NativeAOT builds of namra and namra-server. -->
            <Directives xmlns="http://schemas.microsoft.com/netfx/2013/01/metadata">
              <Application>

            """);
        foreach (var assembly in types.GroupBy(type => Home(type).Assembly.GetName().Name!).OrderBy(group => group.Key, StringComparer.Ordinal))
        {
            xml.Append($"    <Assembly Name=\"{assembly.Key}\">\n");
            foreach (var type in assembly)
            {
                xml.Append($"      <Type Name=\"{Name(type)}\" Dynamic=\"Required All\" />\n");
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
