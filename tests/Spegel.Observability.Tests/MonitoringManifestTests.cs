using System.Diagnostics;
using System.Text.Json;
using Spegel.Hosting;
using YamlDotNet.RepresentationModel;

namespace Spegel.Observability.Tests;

/// <summary>
/// deploy/kubernetes/monitoring renders: by default a ServiceMonitor over one headless Service per DaemonSet (the
/// DaemonSets have no Service of their own), its podmonitor/ alternative a PodMonitor and no Services; both scrape
/// the port the services serve /metrics on, and both ship the dashboard.
/// </summary>
public sealed class MonitoringManifestTests
{
    private static readonly string[] Services = ["registry", "indexer", "resolver"];

    [Fact]
    public async Task Kustomize_Monitoring_RendersHeadlessServicesPerDaemonSetAndAServiceMonitorSelectingThem()
    {
        var root = RepositoryRoot();
        var documents = await RenderAsync(Path.Combine(root, "deploy", "kubernetes", "monitoring"));
        Assert.Empty(OfKind(documents, "PodMonitor"));
        AssertDashboard(documents);

        var monitor = Assert.Single(OfKind(documents, "ServiceMonitor"));
        Assert.Equal("spegel", Scalar(monitor, "metadata", "namespace"));
        var selector = Map(monitor, "spec", "selector");
        var endpoints = Sequence(monitor, "spec", "endpoints").Cast<YamlMappingNode>().ToList();
        var app = Assert.Single(endpoints, e => Scalar(e, "port") == "http");
        Assert.Equal(SpegelMetricsExtensions.MetricsPath, Scalar(app, "path"));
        Assert.Contains(Sequence(app, "relabelings").Cast<YamlMappingNode>(), r => Scalar(r, "targetLabel") == "node"
            && Sequence(r, "sourceLabels").Cast<YamlScalarNode>().Single().Value == "__meta_kubernetes_pod_node_name");

        var services = OfKind(documents, "Service");
        Assert.Equal(Services.Length, services.Count);
        foreach (var service in Services)
        {
            var daemonSet = await DaemonSetAsync(root, service);
            var rendered = Assert.Single(services, s => Scalar(s, "metadata", "name") == $"spegel-{service}-metrics");
            Assert.Equal("spegel", Scalar(rendered, "metadata", "namespace"));
            // Headless: no virtual IP, the endpoints are the pods (one target per pod, with its node).
            Assert.Equal("None", Scalar(rendered, "spec", "clusterIP"));

            // It selects exactly the DaemonSet's pods: its selector is the DaemonSet's, which the pods carry.
            var podSelector = Labels(Map(rendered, "spec", "selector"));
            Assert.Equal(Labels(Map(daemonSet, "spec", "selector", "matchLabels")), podSelector);
            var podLabels = Labels(Map(daemonSet, "spec", "template", "metadata", "labels"));
            Assert.All(podSelector, l => Assert.Equal(l.Value, podLabels.GetValueOrDefault(l.Key)));

            // Port "http" leads to the app container's port of that name, the one serving /metrics.
            var container = Sequence(daemonSet, "spec", "template", "spec", "containers").Cast<YamlMappingNode>().Single(c => Scalar(c, "name") == service);
            var containerPort = Sequence(container, "ports").Cast<YamlMappingNode>().Single(p => Scalar(p, "name") == "http");
            var ports = Sequence(rendered, "spec", "ports").Cast<YamlMappingNode>().ToList();
            var http = Assert.Single(ports, p => Scalar(p, "name") == "http");
            Assert.Equal("http", Scalar(http, "targetPort"));
            Assert.Equal(Scalar(containerPort, "containerPort"), Scalar(http, "port"));

            // The ServiceMonitor selects this Service, and every endpoint it scrapes is a port of it.
            Assert.True(Selects(selector, Labels(Map(rendered, "metadata", "labels"))), $"the ServiceMonitor does not select spegel-{service}-metrics");
            Assert.All(endpoints, e => Assert.Contains(ports, p => Scalar(p, "name") == Scalar(e, "port")));
        }
    }

    [Fact]
    public async Task Kustomize_MonitoringPodMonitorAlternative_RendersPodMonitorAndNoServices()
    {
        var root = RepositoryRoot();
        var documents = await RenderAsync(Path.Combine(root, "deploy", "kubernetes", "monitoring", "podmonitor"));
        Assert.Empty(OfKind(documents, "ServiceMonitor"));
        Assert.Empty(OfKind(documents, "Service"));
        AssertDashboard(documents);

        var monitor = Assert.Single(OfKind(documents, "PodMonitor"));
        var app = Assert.Single(Sequence(monitor, "spec", "podMetricsEndpoints").Cast<YamlMappingNode>(), e => Scalar(e, "port") == "http");
        Assert.Equal(SpegelMetricsExtensions.MetricsPath, Scalar(app, "path"));
        foreach (var service in Services)
        {
            var daemonSet = await DaemonSetAsync(root, service);
            Assert.True(Selects(Map(monitor, "spec", "selector"), Labels(Map(daemonSet, "spec", "template", "metadata", "labels"))), $"the PodMonitor does not select {service}'s pods");
            var container = Sequence(daemonSet, "spec", "template", "spec", "containers").Cast<YamlMappingNode>().Single(c => Scalar(c, "name") == service);
            Assert.Contains(Sequence(container, "ports").Cast<YamlMappingNode>(), p => Scalar(p, "name") == "http");
        }
    }

    [Fact]
    public async Task Dashboard_IsGrafanaJsonWithAPanelPerQuestion()
    {
        using var dashboard = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "monitoring", "grafana-dashboard.json")));
        var panels = dashboard.RootElement.GetProperty("panels").EnumerateArray().ToList();
        var titles = panels.Select(p => p.GetProperty("title").GetString()).ToList();
        Assert.Contains("Hit ratio", titles);
        Assert.Contains("Kept off the upstream", titles);
        Assert.Contains("Peer failures by kind", titles);
        Assert.All(panels.Where(p => p.GetProperty("type").GetString() != "row"), p =>
            Assert.All(p.GetProperty("targets").EnumerateArray(), t => Assert.Contains("spegel_", t.GetProperty("expr").GetString(), StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("registry", Registry.Observability.RegistryMetrics.MeterName)]
    [InlineData("indexer", Indexer.Observability.IndexerMetrics.MeterName)]
    [InlineData("resolver", Resolver.Observability.ResolverMetrics.MeterName)]
    public void MeterNameFor_Service_IsTheMeterTheServiceCreates(string service, string meter) =>
        Assert.Equal(meter, SpegelMetricsExtensions.MeterNameFor(service));

    private static void AssertDashboard(IReadOnlyList<YamlMappingNode> documents)
    {
        var configMap = Assert.Single(OfKind(documents, "ConfigMap"));
        Assert.Equal("1", Scalar(configMap, "metadata", "labels", "grafana_dashboard"));
        using var json = JsonDocument.Parse(Scalar(configMap, "data", "grafana-dashboard.json")!);
        Assert.Equal("spegel-dapr", json.RootElement.GetProperty("uid").GetString());
    }

    /// <summary>A Kubernetes label selector (matchLabels, and matchExpressions with In) against a label set.</summary>
    private static bool Selects(YamlMappingNode selector, Dictionary<string, string> labels)
    {
        var matchLabels = selector.Children.TryGetValue(new YamlScalarNode("matchLabels"), out var m) ? Labels((YamlMappingNode)m) : new Dictionary<string, string>();
        if (matchLabels.Count == 0 && !selector.Children.ContainsKey(new YamlScalarNode("matchExpressions")))
        {
            return false;
        }

        if (matchLabels.Any(l => labels.GetValueOrDefault(l.Key) != l.Value))
        {
            return false;
        }

        if (!selector.Children.TryGetValue(new YamlScalarNode("matchExpressions"), out var expressions))
        {
            return true;
        }

        return ((YamlSequenceNode)expressions).Cast<YamlMappingNode>().All(e =>
        {
            Assert.Equal("In", Scalar(e, "operator"));
            return labels.TryGetValue(Scalar(e, "key")!, out var value) && Sequence(e, "values").Cast<YamlScalarNode>().Any(v => v.Value == value);
        });
    }

    private static async Task<YamlMappingNode> DaemonSetAsync(string root, string service)
    {
        var documents = Parse(await File.ReadAllTextAsync(Path.Combine(root, "deploy", "kubernetes", "base", service + ".yaml")));
        return Assert.Single(OfKind(documents, "DaemonSet"));
    }

    private static List<YamlMappingNode> OfKind(IEnumerable<YamlMappingNode> documents, string kind) =>
        [.. documents.Where(d => Scalar(d, "kind") == kind)];

    private static Dictionary<string, string> Labels(YamlMappingNode map) =>
        map.Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => ((YamlScalarNode)c.Value).Value!, StringComparer.Ordinal);

    private static YamlNode? Find(YamlNode node, string[] path)
    {
        foreach (var key in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var child))
            {
                return null;
            }

            node = child;
        }

        return node;
    }

    private static string? Scalar(YamlNode node, params string[] path) => (Find(node, path) as YamlScalarNode)?.Value;

    private static YamlMappingNode Map(YamlNode node, params string[] path) =>
        Find(node, path) as YamlMappingNode ?? throw new InvalidOperationException($"no mapping at {string.Join('.', path)}");

    private static YamlSequenceNode Sequence(YamlNode node, params string[] path) =>
        Find(node, path) as YamlSequenceNode ?? throw new InvalidOperationException($"no sequence at {string.Join('.', path)}");

    private static List<YamlMappingNode> Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return [.. stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>()];
    }

    private static async Task<List<YamlMappingNode>> RenderAsync(string directory)
    {
        var start = new ProcessStartInfo("kubectl", ["kustomize", directory])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var kubectl = Process.Start(start) ?? throw new InvalidOperationException("kubectl did not start (Debian package kubectl, installed by test.sh)");
        var output = kubectl.StandardOutput.ReadToEndAsync();
        var error = kubectl.StandardError.ReadToEndAsync();
        await kubectl.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(kubectl.ExitCode == 0, await error);
        return Parse(await output);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Spegel.Dapr.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Spegel.Dapr.sln not found above " + AppContext.BaseDirectory);
    }
}
