using System.Globalization;
using System.Text.Json.Nodes;

namespace Spegel.Deploy.Tests;

/// <summary>
/// The peers' shared token in every rendering: the registry reads it from the Secret <c>spegel-peer-token</c>, mounted
/// read-only and required, and nothing ships a value for it.
/// </summary>
public class PeerTokenTests
{
    private const string SecretName = "spegel-peer-token";
    private const string OneLiner = "kubectl -n spegel create secret generic spegel-peer-token --from-literal=token=\"$(openssl rand -hex 32)\"";

    public static TheoryData<string> WithRegistry =>
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

    [Theory]
    [MemberData(nameof(WithRegistry))]
    public void Registry_Kustomization_ReadsTheTokenFromTheRequiredSecretMountedReadOnly(string directory)
    {
        var registry = Kustomize.Render(directory).DaemonSet("registry");
        var env = PodEnvironment.Resolve(registry.App);

        Assert.True(env.TryGetValue("Spegel__PeerTokenFile", out var file), "the registry container has no Spegel__PeerTokenFile");
        var mount = Assert.Single(
            registry.App.Arr("volumeMounts").Cast<JsonObject>(),
            m => file.StartsWith(m.Str("mountPath")! + "/", StringComparison.Ordinal));
        Assert.Equal("true", mount.Str("readOnly"));

        var secret = registry.Volume(mount.Str("name")!).Obj("secret");
        Assert.Equal(SecretName, secret.Str("secretName"));
        // Required: without the Secret the pod does not start (FailedMount), rather than run without a token.
        Assert.Equal("false", secret.Str("optional"));
        var item = Assert.Single(secret.Arr("items").Cast<JsonObject>());
        Assert.Equal("token", item.Str("key"));
        Assert.Equal(file, mount.Str("mountPath") + "/" + item.Str("path"));
        // Not world-readable; group-readable is what the app gets through runAsGroup 0.
        var mode = int.Parse(secret.Str("defaultMode")!, CultureInfo.InvariantCulture);
        Assert.Equal(0, mode & 0b111);
        Assert.NotEqual(0, mode & 0b100_000);
        Assert.Equal("0", registry.App.Str("securityContext", "runAsGroup"));
    }

    [Theory]
    [MemberData(nameof(WithRegistry))]
    public void Secret_Kustomization_IsNeverShippedAndOnlyTheRegistryAppSeesIt(string directory)
    {
        var manifest = Kustomize.Render(directory);

        Assert.DoesNotContain(manifest.OfKind("Secret"), s => s.Str("metadata", "name") == SecretName);
        foreach (var daemonSet in manifest.DaemonSets)
        {
            foreach (var container in daemonSet.AllContainers)
            {
                if (container == daemonSet.App && daemonSet.Component == "registry")
                {
                    continue;
                }

                var mounted = ((container["volumeMounts"] as JsonArray)?.Cast<JsonObject>() ?? [])
                    .Select(m => daemonSet.Volume(m.Str("name")!));
                Assert.DoesNotContain(mounted, v => v.Str("secret", "secretName") == SecretName);
                Assert.DoesNotContain(SecretName, container.ToJsonString(), StringComparison.Ordinal);
            }
        }
    }

    [Theory]
    [InlineData("operations.md")]
    [InlineData("security.md")]
    public void Secret_Docs_GiveTheOneLinerThatCreatesIt(string doc)
    {
        var text = File.ReadAllText(Path.Combine(Kustomize.RepoRoot, "docs", doc));

        Assert.Contains(OneLiner, text, StringComparison.Ordinal);
    }
}
