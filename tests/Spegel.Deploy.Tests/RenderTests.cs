namespace Spegel.Deploy.Tests;

public class RenderTests
{
    public static TheoryData<string> Kustomizations =>
    [
        Kustomize.Base,
        Kustomize.Overlay("redis"),
        Kustomize.Overlay("postgresql"),
        Kustomize.Overlay("kafka"),
        Kustomize.Overlay("nats"),
        Kustomize.Cleanup,
        Kustomize.Composition("redis-network-policy"),
        Kustomize.Composition("redis-k3s"),
        Kustomize.Composition("redis-rke2"),
    ];

    public static TheoryData<string> Overlays => ["redis", "postgresql", "kafka", "nats"];

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Render_Kustomization_Succeeds(string directory)
    {
        var manifest = Kustomize.Render(directory);

        Assert.NotEmpty(manifest.Objects);
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Render_Kustomization_PutsEveryObjectInTheSpegelNamespace(string directory)
    {
        var manifest = Kustomize.Render(directory);

        foreach (var o in manifest.Objects.Where(o => o.Str("kind") != "Namespace"))
        {
            Assert.True(o.Str("metadata", "namespace") == "spegel", $"{o.Str("kind")}/{o.Str("metadata", "name")} is not in namespace spegel");
        }
    }

    [Fact]
    public void Render_Base_MatchesGolden()
    {
        var golden = Path.Combine(Kustomize.RepoRoot, "tests", "Spegel.Deploy.Tests", "testdata", "base.golden.yaml");
        var rendered = Kustomize.RenderText(Kustomize.Base);
        if (Environment.GetEnvironmentVariable("SPEGEL_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(golden, rendered);
        }

        var expected = File.Exists(golden) ? File.ReadAllText(golden) : string.Empty;
        if (expected != rendered)
        {
            var want = expected.Split('\n');
            var got = rendered.Split('\n');
            var line = Enumerable.Range(0, Math.Max(want.Length, got.Length))
                .First(i => i >= want.Length || i >= got.Length || want[i] != got[i]);
            Assert.Fail(
                $"The rendered base differs from testdata/base.golden.yaml at line {line + 1}:\n" +
                $"  golden:   {(line < want.Length ? want[line] : "<end>")}\n  rendered: {(line < got.Length ? got[line] : "<end>")}\n" +
                "If the change is intended: SPEGEL_UPDATE_GOLDEN=1 dotnet test tests/Spegel.Deploy.Tests, and review the diff.");
        }
    }

    [Fact]
    public void Render_KubectlMissing_FailsNamingTheAptPackage()
    {
        var error = Assert.Throws<InvalidOperationException>(() =>
            Kustomize.Run("kubectl-that-is-not-installed", Path.Combine(Kustomize.RepoRoot, Kustomize.Base)));

        Assert.Contains("apt-get install -y kubectl", error.Message, StringComparison.Ordinal);
        Assert.Contains("Debian package `kubectl`", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Render_Overlay_KeepsTheServicesOfTheBaseUnchanged(string backend)
    {
        var baseline = Kustomize.Render(Kustomize.Base);
        var overlay = Kustomize.Render(Kustomize.Overlay(backend));

        foreach (var kind in new[] { "Namespace", "ServiceAccount", "ResourceQuota", "DaemonSet" })
        {
            var expected = baseline.OfKind(kind).Select(o => o.ToJsonString()).Order(StringComparer.Ordinal);
            var actual = overlay.OfKind(kind).Select(o => o.ToJsonString()).Order(StringComparer.Ordinal);
            Assert.Equal(expected, actual);
        }
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Render_Kustomization_GrantsNoKubernetesApiAccess(string directory)
    {
        var manifest = Kustomize.Render(directory);

        Assert.DoesNotContain(manifest.Objects, o => o.Str("kind") is "Role" or "ClusterRole" or "RoleBinding" or "ClusterRoleBinding");
        foreach (var account in manifest.OfKind("ServiceAccount"))
        {
            Assert.Equal("false", account.Str("automountServiceAccountToken"));
        }

        foreach (var daemonSet in manifest.DaemonSets)
        {
            Assert.Equal("spegel", daemonSet.PodSpec.Str("serviceAccountName"));
            Assert.Equal("false", daemonSet.PodSpec.Str("automountServiceAccountToken"));
        }
    }
}
