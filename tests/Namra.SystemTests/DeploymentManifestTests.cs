using System.Diagnostics;
using Namra.Testing;
using YamlDotNet.RepresentationModel;

namespace Namra.SystemTests;

/// <summary>
/// The Kubernetes overlays render (<c>kubectl kustomize</c>) and every workload keeps the policy: probes, limits,
/// a non-root user, a read-only root filesystem, no privilege escalation, no capabilities; a disruption budget per
/// service; autoscalers for the stateless tiers; default-deny network policies; headless internal Services.
/// The compose file is valid for <c>docker-compose</c>. Checked offline: no cluster, no API server.
/// </summary>
public sealed class DeploymentManifestTests
{
    private static readonly string[] Services = ["config", "llm-gateway", "tool-executor", "memory", "orchestrator"];

    [Theory]
    [InlineData("dev")]
    [InlineData("production")]
    public async Task EveryOverlay_RendersAndKeepsThePolicy(string overlay)
    {
        var rendered = await RunAsync("kubectl", "kustomize", RepositoryPaths.Combine("deploy", "k8s", "overlays", overlay));
        var stream = new YamlStream();
        stream.Load(new StringReader(rendered));
        var objects = stream.Documents.Select(d => (YamlMappingNode)d.RootNode).ToList();
        YamlMappingNode[] OfKind(string kind) => [.. objects.Where(o => Text(o, "kind") == kind)];

        var deployments = OfKind("Deployment");
        Assert.Equal(Services.Order(), deployments.Select(d => Text(d, "metadata", "name")).Order());
        foreach (var deployment in deployments)
        {
            var name = Text(deployment, "metadata", "name");
            var pod = Map(deployment, "spec", "template", "spec");
            Assert.Equal("true", Text(pod, "securityContext", "runAsNonRoot"));
            foreach (YamlMappingNode container in (YamlSequenceNode)pod.Children["containers"])
            {
                foreach (var probe in new[] { "startupProbe", "readinessProbe", "livenessProbe" })
                {
                    Assert.True(container.Children.ContainsKey(probe), $"{name}: no {probe}");
                }

                Assert.NotNull(Text(container, "resources", "limits", "cpu"));
                Assert.NotNull(Text(container, "resources", "limits", "memory"));
                Assert.NotNull(Text(container, "resources", "requests", "cpu"));
                Assert.Equal("true", Text(container, "securityContext", "readOnlyRootFilesystem"));
                Assert.Equal("false", Text(container, "securityContext", "allowPrivilegeEscalation"));
                Assert.Contains("ALL", ((YamlSequenceNode)Map(container, "securityContext", "capabilities").Children["drop"]).Select(n => n.ToString()));
                Assert.Equal(name, ((YamlSequenceNode)container.Children["env"]).Cast<YamlMappingNode>().Single(e => Text(e, "name") == "NAMRA_SERVICES").Children["value"].ToString());
            }
        }

        Assert.Equal(Services.Order(), OfKind("PodDisruptionBudget").Select(p => Text(p, "spec", "selector", "matchLabels", "app.kubernetes.io/name")).Order());
        Assert.Equal(["llm-gateway", "orchestrator", "tool-executor"], OfKind("HorizontalPodAutoscaler").Select(h => Text(h, "spec", "scaleTargetRef", "name")).Order());
        var services = OfKind("Service");
        Assert.All(services.Where(s => Text(s, "metadata", "name") != "orchestrator"), s => Assert.Equal("None", Text(s, "spec", "clusterIP")));
        var denyAll = Assert.Single(OfKind("NetworkPolicy"), p => Text(p, "metadata", "name") == "namra-default-deny");
        Assert.False(denyAll.Children.ContainsKey(new YamlScalarNode("ingress")) || Map(denyAll, "spec").Children.ContainsKey(new YamlScalarNode("ingress")));
        Assert.Contains(OfKind("ConfigMap"), c => Text(c, "metadata", "name") == "namra-agents");
    }

    [Theory]
    [InlineData("dev")]
    [InlineData("production")]
    public async Task EveryOverlay_MatchesTheKubernetesApiTypes(string overlay)
    {
        var rendered = await RunAsync("kubectl", "kustomize", RepositoryPaths.Combine("deploy", "k8s", "overlays", overlay));

        // The official client's models are generated from the Kubernetes OpenAPI document: strict reading refuses
        // unknown kinds, unknown fields and values of the wrong type.
        var objects = k8s.KubernetesYaml.LoadAllFromString(rendered, strict: true);

        Assert.Equal(27, objects.Count);
        Assert.All(objects, o => Assert.IsAssignableFrom<k8s.IKubernetesObject>(o));
        Assert.Equal(5, objects.OfType<k8s.Models.V1Deployment>().Count());
        Assert.All(objects.OfType<k8s.Models.V1Deployment>(), d => Assert.Equal(50051, d.Spec.Template.Spec.Containers[0].ReadinessProbe.Grpc.Port));
    }

    [Fact]
    public async Task TheComposeFile_IsValid()
    {
        var config = await RunAsync("docker-compose", "-f", RepositoryPaths.Combine("docker-compose.yml"), "config");

        foreach (var service in Services.Concat(["redis", "postgres", "jaeger", "prometheus", "grafana"]))
        {
            Assert.Contains($"  {service}:", config, StringComparison.Ordinal);
        }
    }

    private static YamlMappingNode Map(YamlMappingNode node, params string[] path)
    {
        foreach (var key in path)
        {
            node = (YamlMappingNode)node.Children[new YamlScalarNode(key)];
        }

        return node;
    }

    private static string? Text(YamlMappingNode node, params string[] path)
    {
        YamlNode current = node;
        foreach (var key in path)
        {
            if (current is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var next))
            {
                return null;
            }

            current = next;
        }

        return current is YamlScalarNode scalar ? scalar.Value : null;
    }

    private static async Task<string> RunAsync(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepositoryPaths.Root };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            throw new InvalidOperationException($"{program} is not installed; .ci/run installs it (apt-get install kubernetes-client docker-compose).", exception);
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)} failed: {await error}");
            return await output;
        }
    }
}
