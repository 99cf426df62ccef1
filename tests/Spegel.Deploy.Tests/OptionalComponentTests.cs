using System.Text.Json.Nodes;

namespace Spegel.Deploy.Tests;

/// <summary>The optional kustomize components under deploy/kubernetes/components, each composed onto the redis overlay.</summary>
public class OptionalComponentTests
{
    [Fact]
    public void NetworkPolicy_Component_SelectsEveryServiceAndLetsItsCallersIn()
    {
        var manifest = Kustomize.Render(Kustomize.Composition("redis-network-policy"));
        var policies = manifest.OfKind("NetworkPolicy").ToList();

        foreach (var daemonSet in manifest.DaemonSets)
        {
            Assert.Single(policies, p => Selects(p.Obj("spec", "podSelector"), daemonSet.PodLabels));
        }

        var registry = manifest.DaemonSet("registry");
        var registryPolicy = policies.Single(p => Selects(p.Obj("spec", "podSelector"), registry.PodLabels));
        var registryPort = Workload.Port(registry.App, "http").Str("containerPort");
        Assert.Contains(Rules(registryPolicy), r => r["from"] is null && Ports(r).Contains(registryPort));

        // Service invocation arrives at the resolver's sidecar (Dapr internal gRPC, 50002) from the registries' sidecars.
        var resolverPolicy = policies.Single(p => Selects(p.Obj("spec", "podSelector"), manifest.DaemonSet("resolver").PodLabels));
        Assert.Contains(Rules(resolverPolicy), r => Ports(r).Contains("50002")
            && r.Arr("from").Cast<JsonObject>().Any(f => f["podSelector"] is JsonObject s && Selects(s, registry.PodLabels)));
    }

    [Theory]
    [InlineData("redis-k3s", "/run/k3s/containerd", "/var/lib/rancher/k3s/agent/containerd/io.containerd.content.v1.content", "/var/lib/rancher/k3s/agent/etc/containerd/certs.d")]
    [InlineData("redis-rke2", "/run/k3s/containerd", "/var/lib/rancher/rke2/agent/containerd/io.containerd.content.v1.content", "/var/lib/rancher/rke2/agent/etc/containerd/certs.d")]
    public void Distribution_Component_MovesOnlyTheHostSideOfTheMounts(string composition, string run, string content, string certs)
    {
        var standard = Kustomize.Render(Kustomize.Base);
        var moved = Kustomize.Render(Kustomize.Composition(composition));

        var registry = moved.DaemonSet("registry");
        Assert.Equal(run, registry.Volume("containerd-run").Str("hostPath", "path"));
        Assert.Equal(content, registry.Volume("containerd-content").Str("hostPath", "path"));
        Assert.Equal(certs, registry.Volume("containerd-certs").Str("hostPath", "path"));
        Assert.Equal(run, moved.DaemonSet("indexer").Volume("containerd-run").Str("hostPath", "path"));
        foreach (var component in new[] { "registry", "indexer", "resolver" })
        {
            // Inside the containers nothing moves, so the services' settings stay the same.
            Assert.Equal(
                string.Join('\n', standard.DaemonSet(component).AllContainers.Select(c => c.ToJsonString())),
                string.Join('\n', moved.DaemonSet(component).AllContainers.Select(c => c.ToJsonString())));
        }
    }

    private static bool Selects(JsonObject selector, JsonObject labels) =>
        selector.Obj("matchLabels").All(kv => labels.Str(kv.Key) == kv.Value!.GetValue<string>());

    private static IEnumerable<JsonObject> Rules(JsonObject policy) => policy.Arr("spec", "ingress").Cast<JsonObject>();

    private static List<string?> Ports(JsonObject rule) => rule.Arr("ports").Cast<JsonObject>().Select(p => p.Str("port")).ToList();
}
