using System.Globalization;
using System.Text.Json.Nodes;
using Spegel.Cli;

namespace Spegel.Deploy.Tests;

/// <summary>The pods themselves: probes, host mounts, security, resources, scheduling, environment, init container.</summary>
public class WorkloadTests
{
    private const string CertsD = "/etc/containerd/certs.d";
    private const string ContainerdRun = "/run/containerd";
    private const string ContentDirectory = "/var/lib/containerd/io.containerd.content.v1.content";

    public static TheoryData<string> Components => ["registry", "indexer", "resolver"];

    public static TheoryData<string> WithPods => [Kustomize.Base, Kustomize.Cleanup, Kustomize.Composition("redis-k3s")];

    private static Manifest Base => Kustomize.Render(Kustomize.Base);

    [Theory]
    [MemberData(nameof(Components))]
    public void Probes_Service_CheckHealthzAndReadyzOnTheAppPort(string component)
    {
        var daemonSet = Base.DaemonSet(component);
        var app = daemonSet.App;
        var appPort = int.Parse(daemonSet.Annotations.Str("dapr.io/app-port")!, CultureInfo.InvariantCulture);

        foreach (var (probe, path) in new[] { ("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz") })
        {
            var spec = app.Obj(probe);
            Assert.Equal(path, spec.Str("httpGet", "path"));
            Assert.Equal(appPort, Workload.ProbePort(app, spec));
        }
    }

    [Theory]
    [MemberData(nameof(WithPods))]
    public void HostPathMounts_Everywhere_AreReadOnlyExceptTheInitContainersCertsD(string directory)
    {
        foreach (var daemonSet in Kustomize.Render(directory).DaemonSets)
        {
            foreach (var (container, mount, hostPath) in daemonSet.HostPathMounts())
            {
                var isInit = daemonSet.InitContainers.Contains(container);
                var writable = mount.Str("readOnly") != "true";
                if (isInit)
                {
                    Assert.True(writable, $"{daemonSet.Name}/{container.Str("name")}: the init container writes {hostPath}");
                    Assert.EndsWith("/certs.d", hostPath, StringComparison.Ordinal);
                }
                else
                {
                    Assert.False(writable, $"{daemonSet.Name}/{container.Str("name")} mounts {hostPath} writable");
                }
            }
        }
    }

    [Theory]
    [InlineData("registry", new[] { ContainerdRun, ContentDirectory }, new[] { CertsD })]
    [InlineData("indexer", new[] { ContainerdRun }, new string[0])]
    [InlineData("resolver", new string[0], new string[0])]
    public void HostPathMounts_Service_OnlyWhatItNeeds(string component, string[] app, string[] init)
    {
        var daemonSet = Base.DaemonSet(component);
        var mounts = daemonSet.HostPathMounts().ToList();

        Assert.Equal(app.Order(StringComparer.Ordinal), mounts.Where(m => m.Container == daemonSet.App).Select(m => m.HostPath).Order(StringComparer.Ordinal));
        Assert.Equal(init.Order(StringComparer.Ordinal), mounts.Where(m => daemonSet.InitContainers.Contains(m.Container)).Select(m => m.HostPath).Order(StringComparer.Ordinal));
        Assert.All(daemonSet.Volumes.Where(v => v["hostPath"] is not null), v => Assert.NotNull(v.Str("hostPath", "type")));
    }

    [Theory]
    [MemberData(nameof(WithPods))]
    public void SecurityContext_EveryContainer_IsRestrictive(string directory)
    {
        foreach (var daemonSet in Kustomize.Render(directory).DaemonSets)
        {
            var pod = daemonSet.PodSpec;
            Assert.Null(pod.Str("hostNetwork"));
            Assert.Null(pod.Str("hostPID"));
            Assert.Null(pod.Str("hostIPC"));
            Assert.Equal("RuntimeDefault", pod.Str("securityContext", "seccompProfile", "type"));
            foreach (var container in daemonSet.AllContainers)
            {
                var name = $"{daemonSet.Name}/{container.Str("name")}";
                var context = container.Obj("securityContext");
                Assert.True(context.Str("allowPrivilegeEscalation") == "false", $"{name}: allowPrivilegeEscalation");
                Assert.True(context.Str("readOnlyRootFilesystem") == "true", $"{name}: readOnlyRootFilesystem");
                Assert.True(context.Str("privileged") is null or "false", $"{name}: privileged");
                Assert.Equal(["ALL"], PodEnvironment.Strings(context.At("capabilities", "drop")));
                Assert.Null(context.At("capabilities", "add"));

                // Root only where the host's root-owned certs.d is written; every service runs as a non-root uid.
                if (daemonSet.InitContainers.Contains(container))
                {
                    Assert.StartsWith("configure-containerd", container.Str("name"), StringComparison.Ordinal);
                }
                else
                {
                    Assert.True(context.Str("runAsNonRoot") == "true", $"{name}: runAsNonRoot");
                    Assert.NotEqual("0", context.Str("runAsUser"));
                    Assert.NotNull(context.Str("runAsUser"));
                }
            }
        }
    }

    [Fact]
    public void SecurityContext_Resolver_HasNoRootGroupEither()
    {
        var context = Base.DaemonSet("resolver").App.Obj("securityContext");

        Assert.NotEqual("0", context.Str("runAsGroup"));
        Assert.Null(Base.DaemonSet("resolver").PodSpec.At("securityContext", "supplementalGroups"));
    }

    [Theory]
    [MemberData(nameof(WithPods))]
    public void Resources_EveryContainer_HasRequestsAndAMemoryLimit(string directory)
    {
        foreach (var daemonSet in Kustomize.Render(directory).DaemonSets)
        {
            foreach (var container in daemonSet.AllContainers)
            {
                var name = $"{daemonSet.Name}/{container.Str("name")}";
                Assert.True(container.Str("resources", "requests", "cpu") is not null, $"{name}: cpu request");
                var request = MiB(container.Str("resources", "requests", "memory"));
                var limit = MiB(container.Str("resources", "limits", "memory"));
                Assert.True(request > 0 && limit >= request, $"{name}: memory request {request} MiB, limit {limit} MiB");
            }
        }
    }

    [Fact]
    public void Resources_Registry_MemoryLimitFitsThePeakTargetOf150MiB()
    {
        var limit = MiB(Base.DaemonSet("registry").App.Str("resources", "limits", "memory"));

        // Above the target with headroom (the GC keeps its heap within 75% of the limit), but not a blank cheque.
        Assert.InRange(limit, 150, 256);
    }

    [Fact]
    public void Scheduling_EveryDaemonSet_RunsOnEveryNodeAndRollsWithoutPortClashes()
    {
        var manifest = Base;
        var quota = manifest.Single("ResourceQuota", "spegel-critical-pods");
        var quotaClasses = PodEnvironment.Strings(quota.Arr("spec", "scopeSelector", "matchExpressions")[0]!["values"]).ToList();

        foreach (var daemonSet in manifest.DaemonSets)
        {
            Assert.Contains(daemonSet.PodSpec.Arr("tolerations").Cast<JsonObject>(), t => t.Str("operator") == "Exists" && t.Str("key") is null && t.Str("effect") is null);
            Assert.Contains(daemonSet.PodSpec.Str("priorityClassName"), quotaClasses);
            Assert.Equal("RollingUpdate", daemonSet.Object.Str("spec", "updateStrategy", "type"));
            Assert.NotNull(daemonSet.Object.Str("spec", "updateStrategy", "rollingUpdate", "maxUnavailable"));
            var hostPorts = daemonSet.Containers.SelectMany(c => (c["ports"] as JsonArray)?.Cast<JsonObject>() ?? []).Any(p => p["hostPort"] is not null);
            if (hostPorts)
            {
                // The old and the new pod cannot both bind the host port on a node.
                Assert.Equal("0", daemonSet.Object.Str("spec", "updateStrategy", "rollingUpdate", "maxSurge"));
            }
        }
    }

    [Theory]
    [MemberData(nameof(WithPods))]
    public void Env_EveryReference_IsDefinedEarlierInTheSameContainer(string directory)
    {
        foreach (var daemonSet in Kustomize.Render(directory).DaemonSets)
        {
            foreach (var container in daemonSet.AllContainers)
            {
                var env = PodEnvironment.Resolve(container);
                var unresolved = env.Values.Concat(PodEnvironment.CommandLine(container))
                    .SelectMany(v => PodEnvironment.Reference().Matches(v).Select(m => m.Value))
                    .ToList();
                Assert.True(unresolved.Count == 0, $"{daemonSet.Name}/{container.Str("name")}: {string.Join(", ", unresolved)} reach the process unexpanded");
            }
        }
    }

    [Fact]
    public void Env_RegistryAndIndexer_AdvertiseTheAddressContainerdIsPointedAt()
    {
        var registry = Base.DaemonSet("registry");
        var indexer = Base.DaemonSet("indexer");
        var hostPort = Workload.Port(registry.App, "http").Str("hostPort");
        var expected = $"http://{PodEnvironment.SampleNode["status.hostIP"]}:{hostPort}";

        var registryEnv = PodEnvironment.Resolve(registry.App);
        var indexerEnv = PodEnvironment.Resolve(indexer.App);
        var init = PodEnvironment.CommandLine(Assert.Single(registry.InitContainers));

        // Peers use the address the indexer publishes; the registry must recognise it as its own.
        Assert.Equal(expected, indexerEnv["Spegel__Node__Address"]);
        Assert.Equal(expected, registryEnv["Spegel__Node__Address"]);
        Assert.Equal(expected, init[init.ToList().IndexOf("--mirror-target") + 1]);
        Assert.Equal(PodEnvironment.SampleNode["spec.nodeName"], registryEnv["Spegel__Node__Name"]);
        Assert.Equal(PodEnvironment.SampleNode["spec.nodeName"], indexerEnv["Spegel__Node__Name"]);
    }

    [Fact]
    public void Env_Registry_SpoolsOnItsOwnEmptyDirWithABudgetBelowItsSizeLimit()
    {
        var registry = Base.DaemonSet("registry");
        var env = PodEnvironment.Resolve(registry.App);
        var spool = env["Spegel__MirrorSpoolPath"];
        var budgetMiB = long.Parse(env["Spegel__MirrorSpoolLimitBytes"], CultureInfo.InvariantCulture) / (1024.0 * 1024);
        var mount = Assert.Single(registry.App.Arr("volumeMounts").Cast<JsonObject>(), m => m.Str("mountPath") == spool);
        var volume = registry.Volume(mount.Str("name")!);

        // The spool must not fall back to /tmp (64 MiB emptyDir, a read-only root elsewhere): past an emptyDir's
        // sizeLimit the kubelet evicts the pod, so the registry's own budget must stay below it.
        Assert.NotEqual("/tmp", spool);
        Assert.StartsWith("/", spool, StringComparison.Ordinal);
        Assert.NotEqual("true", mount.Str("readOnly"));
        Assert.NotNull(volume["emptyDir"]);
        Assert.Null(volume.Str("emptyDir", "medium"));
        var sizeLimit = MiB(volume.Str("emptyDir", "sizeLimit"));
        Assert.True(budgetMiB >= 1024 && budgetMiB < sizeLimit, $"spool budget {budgetMiB} MiB, emptyDir sizeLimit {sizeLimit} MiB");
    }

    [Theory]
    [InlineData("registry", true)]
    [InlineData("indexer", false)]
    public void Env_Service_PointsAtTheMountedContainerd(string component, bool readsContent)
    {
        var app = Base.DaemonSet(component).App;
        var env = PodEnvironment.Resolve(app);
        var mounts = app.Arr("volumeMounts").Cast<JsonObject>().Select(m => m.Str("mountPath")!).ToList();

        Assert.Contains(mounts, m => env["Spegel__Containerd__Socket"].StartsWith(m + "/", StringComparison.Ordinal));
        if (readsContent)
        {
            Assert.Contains(env["Spegel__Containerd__ContentPath"], mounts);
        }
    }

    [Fact]
    public void InitContainer_Registry_WritesHostsTomlThatTheRealCliAccepts()
    {
        var registry = Base.DaemonSet("registry");
        var init = Assert.Single(registry.InitContainers);
        var mount = Assert.Single(init.Arr("volumeMounts").Cast<JsonObject>());
        Assert.Equal(CertsD, registry.Volume(mount.Str("name")!).Str("hostPath", "path"));
        Assert.Equal(registry.App.Str("image"), init.Str("image"));

        var root = Directory.CreateTempSubdirectory("spegel-deploy-").FullName;
        try
        {
            var arguments = CliArguments(init, mount.Str("mountPath")!, root);
            using var output = new StringWriter();
            using var error = new StringWriter();

            var code = ConfigureContainerdCommand.Run(arguments[1..], output, error);

            Assert.True(code == 0, error.ToString());
            Assert.Equal("configure-containerd", arguments[0]);
            var hosts = File.ReadAllText(Path.Combine(root, "_default", "hosts.toml"));
            Assert.Contains("[host.\"http://10.0.0.1:30020\"]", hosts, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Cleanup_DaemonSet_RestoresWhatTheRegistryInitContainerWrote()
    {
        var registry = Base.DaemonSet("registry");
        var cleanup = Kustomize.Render(Kustomize.Cleanup).DaemonSet("cleanup");
        var writer = Assert.Single(registry.InitContainers);
        var restorer = Assert.Single(cleanup.InitContainers);
        var writerMount = Assert.Single(writer.Arr("volumeMounts").Cast<JsonObject>());
        var restorerMount = Assert.Single(restorer.Arr("volumeMounts").Cast<JsonObject>());
        Assert.Equal(registry.Volume(writerMount.Str("name")!).Str("hostPath", "path"), cleanup.Volume(restorerMount.Str("name")!).Str("hostPath", "path"));
        Assert.Equal(registry.App.Str("image"), restorer.Str("image"));

        var root = Directory.CreateTempSubdirectory("spegel-deploy-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "docker.io"));
            File.WriteAllText(Path.Combine(root, "docker.io", "hosts.toml"), "server = \"https://registry-1.docker.io\"\n");
            using var output = new StringWriter();
            using var error = new StringWriter();
            Assert.Equal(0, ConfigureContainerdCommand.Run(CliArguments(writer, writerMount.Str("mountPath")!, root)[1..], output, error));

            var code = ConfigureContainerdCommand.Run(CliArguments(restorer, restorerMount.Str("mountPath")!, root)[1..], output, error);

            Assert.True(code == 0, error.ToString());
            Assert.Equal(["docker.io"], Directory.EnumerateFileSystemEntries(root).Select(Path.GetFileName));
            Assert.Equal("server = \"https://registry-1.docker.io\"\n", File.ReadAllText(Path.Combine(root, "docker.io", "hosts.toml")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>The arguments the CLI's Program receives (after the dll), with the host path swapped for a temporary directory.</summary>
    private static string[] CliArguments(JsonObject init, string mountPath, string hostDirectory)
    {
        var commandLine = PodEnvironment.CommandLine(init).ToList();
        Assert.Equal(["dotnet", "/app/cli/Spegel.Cli.dll"], commandLine.Take(2));
        var arguments = commandLine.Skip(2).ToArray();
        var configPath = Array.IndexOf(arguments, "--config-path");
        Assert.True(configPath > 0, "the init container names --config-path explicitly");
        Assert.Equal(mountPath, arguments[configPath + 1]);
        arguments[configPath + 1] = hostDirectory;
        return arguments;
    }

    private static double MiB(string? quantity)
    {
        Assert.NotNull(quantity);
        var units = new (string Suffix, double Factor)[] { ("Gi", 1024), ("Mi", 1), ("Ki", 1.0 / 1024) };
        foreach (var (suffix, factor) in units)
        {
            if (quantity.EndsWith(suffix, StringComparison.Ordinal))
            {
                return double.Parse(quantity[..^suffix.Length], CultureInfo.InvariantCulture) * factor;
            }
        }

        return double.Parse(quantity, CultureInfo.InvariantCulture) / (1024 * 1024);
    }
}
