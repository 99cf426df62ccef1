using System.Globalization;
using System.Text.Json.Nodes;
using Spegel.Core.Events;

namespace Spegel.Deploy.Tests;

/// <summary>The Dapr side of the manifests: app-ids, ports, configuration and who may use which component.</summary>
public class DaprWiringTests
{
    private const string DaprApiTokenSecret = "spegel-dapr-api-token";
    private const string DaprApiTokenOneLiner =
        "kubectl -n spegel create secret generic spegel-dapr-api-token --from-literal=token=\"$(openssl rand -base64 32)\"";

    /// <summary>Which components each app-id uses: the indexer publishes, the resolver subscribes and keeps the map, the registry asks the resolver by service invocation and needs neither.</summary>
    private static readonly Dictionary<string, string[]> Uses = new(StringComparer.Ordinal)
    {
        ["registry"] = [],
        ["indexer"] = [ContentTopics.DefaultPubSub],
        ["resolver"] = [ContentTopics.DefaultPubSub, ContentTopics.DefaultStateStore],
    };

    public static TheoryData<string> Overlays => RenderTests.Overlays;

    /// <summary>Every rendering with the three Dapr-enabled DaemonSets: the base, each overlay, each optional component.</summary>
    public static TheoryData<string> WithDaprApps =>
    [
        Kustomize.Base,
        Kustomize.Overlay("redis"),
        Kustomize.Overlay("postgresql"),
        Kustomize.Overlay("kafka"),
        Kustomize.Overlay("nats"),
        Kustomize.Composition("redis-network-policy"),
        Kustomize.Composition("redis-k3s"),
        Kustomize.Composition("redis-rke2"),
    ];

    public static TheoryData<string, string, int> Services => new()
    {
        { "registry", "registry", 5000 },
        { "indexer", "indexer", 5001 },
        { "resolver", "resolver", 5002 },
    };

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Components_Overlay_AreScopedToExactlyTheAppsThatUseThem(string backend)
    {
        var manifest = Kustomize.Render(Kustomize.Overlay(backend));
        var appIds = manifest.DaemonSets.Select(d => d.AppId!).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(Uses.Keys.Order(StringComparer.Ordinal), appIds.Order(StringComparer.Ordinal));

        foreach (var component in manifest.DaprComponents)
        {
            var name = component.Str("metadata", "name")!;
            var scopes = Scopes(component);
            Assert.True(scopes.Count > 0, $"{name} has no scopes: every app-id in the namespace, the registry included, could use it");
            Assert.All(scopes, s => Assert.True(appIds.Contains(s), $"{name} is scoped to '{s}', which no DaemonSet is"));
            var users = Uses.Where(u => u.Value.Contains(name, StringComparer.Ordinal)).Select(u => u.Key);
            Assert.Equal(users.Order(StringComparer.Ordinal), scopes.Order(StringComparer.Ordinal));
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Components_Overlay_HaveOneStateStoreAndOnePubSubNamedAsTheServicesExpect(string backend)
    {
        var manifest = Kustomize.Render(Kustomize.Overlay(backend));
        var components = manifest.DaprComponents;

        var state = Assert.Single(components, c => c.Str("spec", "type")!.StartsWith("state.", StringComparison.Ordinal));
        var pubsub = Assert.Single(components, c => c.Str("spec", "type")!.StartsWith("pubsub.", StringComparison.Ordinal));
        Assert.Equal(ContentTopics.DefaultStateStore, state.Str("metadata", "name"));
        Assert.Equal(ContentTopics.DefaultPubSub, pubsub.Str("metadata", "name"));
        Assert.Equal(2, components.Count);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Resiliency_Overlay_TargetsExistingComponentsAndApps(string backend)
    {
        var manifest = Kustomize.Render(Kustomize.Overlay(backend));
        var appIds = manifest.DaemonSets.Select(d => d.AppId!).ToHashSet(StringComparer.Ordinal);
        var names = manifest.DaprComponents.Select(c => c.Str("metadata", "name")!).ToHashSet(StringComparer.Ordinal);

        foreach (var resiliency in manifest.OfKind("Resiliency"))
        {
            Assert.All(Scopes(resiliency), s => Assert.Contains(s, appIds));
            var targets = resiliency.At("spec", "targets", "components") as JsonObject ?? [];
            Assert.All(targets.Select(t => t.Key), t => Assert.Contains(t, names));
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void DaemonSets_Overlay_UseAConfigurationTheOverlayDefines(string backend)
    {
        var manifest = Kustomize.Render(Kustomize.Overlay(backend));
        var configurations = manifest.OfKind("Configuration").Select(c => c.Str("metadata", "name")).ToList();

        foreach (var daemonSet in manifest.DaemonSets)
        {
            Assert.Contains(daemonSet.Annotations.Str("dapr.io/config"), configurations);
        }
    }

    [Theory]
    [MemberData(nameof(Services))]
    public void DaemonSet_Service_AppPortIsTheContainerPortAndTheListenPort(string component, string appId, int port)
    {
        var daemonSet = Kustomize.Render(Kustomize.Base).DaemonSet(component);
        var app = daemonSet.App;
        var env = PodEnvironment.Resolve(app);

        Assert.Equal("true", daemonSet.Annotations.Str("dapr.io/enabled"));
        Assert.Equal(appId, daemonSet.AppId);
        Assert.Equal("http", daemonSet.Annotations.Str("dapr.io/app-protocol"));
        Assert.Equal(port.ToString(CultureInfo.InvariantCulture), daemonSet.Annotations.Str("dapr.io/app-port"));
        Assert.Equal(port.ToString(CultureInfo.InvariantCulture), Workload.Port(app, "http").Str("containerPort"));
        // Every interface: the kubelet probes the pod IP, the sidecar calls 127.0.0.1, peers come through the hostPort.
        Assert.Equal($"http://+:{port}", env["Urls"]);
        // appsettings.json sets Urls, which wins over ASPNETCORE_URLS / HTTP_PORTS: those would be silently ignored.
        Assert.DoesNotContain(env.Keys, k => k is "ASPNETCORE_URLS" or "ASPNETCORE_HTTP_PORTS" or "ASPNETCORE_HTTPS_PORTS");
        Assert.DoesNotContain(PodEnvironment.CommandLine(app), a => a.StartsWith("--urls", StringComparison.Ordinal));
        Assert.Equal("Dapr", env["Spegel__Transport"]);
    }

    /// <summary>
    /// The Dapr API token is in the base, on every DaemonSet, both ways: the sidecar requires it from the app
    /// (<c>api-token-secret</c>) and presents it to the app (<c>app-token-secret</c>). The injector sets the variables
    /// in the daprd container only, so each service container gets them from the same Secret.
    /// </summary>
    [Theory]
    [MemberData(nameof(WithDaprApps))]
    public void DaemonSets_Kustomization_EveryOneCarriesTheDaprApiTokenSecret(string directory)
    {
        var daemonSets = Kustomize.Render(directory).DaemonSets.ToList();

        Assert.Equal(["indexer", "registry", "resolver"], daemonSets.Select(d => d.Component).Order(StringComparer.Ordinal));
        foreach (var daemonSet in daemonSets)
        {
            Assert.Equal(DaprApiTokenSecret, daemonSet.Annotations.Str("dapr.io/api-token-secret"));
            Assert.Equal(DaprApiTokenSecret, daemonSet.Annotations.Str("dapr.io/app-token-secret"));
            var env = daemonSet.App.Arr("env").Cast<JsonObject>().ToList();
            foreach (var variable in new[] { "DAPR_API_TOKEN", "APP_API_TOKEN" })
            {
                var entry = Assert.Single(env, e => e.Str("name") == variable);
                Assert.Equal(DaprApiTokenSecret, entry.Str("valueFrom", "secretKeyRef", "name"));
                Assert.Equal("token", entry.Str("valueFrom", "secretKeyRef", "key"));
            }

            // The init container talks to no sidecar and gets no token.
            Assert.All(daemonSet.InitContainers, c => Assert.DoesNotContain("TOKEN", c.ToJsonString(), StringComparison.Ordinal));
        }

        // Nothing ships a value: the operator creates the Secret (docs/operations.md §2).
        Assert.DoesNotContain(Kustomize.Render(directory).OfKind("Secret"), s => s.Str("metadata", "name") == DaprApiTokenSecret);
    }

    /// <summary>The Secret every DaemonSet needs is created by a line in the install steps, next to the peer token's.</summary>
    [Fact]
    public void DaprApiTokenSecret_OperationsDoc_GivesTheOneLinerInTheInstallSection()
    {
        var text = File.ReadAllText(Path.Combine(Kustomize.RepoRoot, "docs", "operations.md"));
        var install = text.IndexOf("\n## 2. Install", StringComparison.Ordinal);
        var next = text.IndexOf("\n## 3.", StringComparison.Ordinal);
        Assert.True(install >= 0 && next > install, "docs/operations.md has no §2 Install followed by §3");

        var section = text[install..next];
        Assert.Contains(DaprApiTokenOneLiner, section, StringComparison.Ordinal);
        Assert.Contains("spegel-peer-token --from-literal", section, StringComparison.Ordinal);
    }

    [Fact]
    public void DaemonSets_Base_NeedNoActorPlacement()
    {
        foreach (var daemonSet in Kustomize.Render(Kustomize.Base).DaemonSets)
        {
            Assert.Equal(string.Empty, daemonSet.Annotations.Str("dapr.io/placement-host-address"));
            Assert.Equal("RuntimeDefault", daemonSet.Annotations.Str("dapr.io/sidecar-seccomp-profile-type"));
            Assert.NotNull(daemonSet.Annotations.Str("dapr.io/sidecar-memory-limit"));
        }
    }

    private static List<string> Scopes(JsonObject o) => PodEnvironment.Strings(o["scopes"]).ToList();
}
