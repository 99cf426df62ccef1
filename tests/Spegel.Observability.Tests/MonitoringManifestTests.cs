using System.Diagnostics;
using System.Text.Json;
using Spegel.Hosting;

namespace Spegel.Observability.Tests;

/// <summary>deploy/kubernetes/monitoring renders, scrapes the port the services serve /metrics on, and ships the dashboard.</summary>
public sealed class MonitoringManifestTests
{
    [Fact]
    public async Task Kustomize_Monitoring_RendersPodMonitorAndDashboardConfigMap()
    {
        var root = RepositoryRoot();
        var start = new ProcessStartInfo("kubectl", ["kustomize", Path.Combine(root, "deploy", "kubernetes", "monitoring")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var kubectl = Process.Start(start) ?? throw new InvalidOperationException("kubectl did not start (Debian package kubectl, installed by test.sh)");
        var output = kubectl.StandardOutput.ReadToEndAsync();
        var error = kubectl.StandardError.ReadToEndAsync();
        await kubectl.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(kubectl.ExitCode == 0, await error);
        var yaml = await output;

        Assert.Contains("kind: PodMonitor", yaml, StringComparison.Ordinal);
        Assert.Contains("app.kubernetes.io/part-of: spegel-dapr", yaml, StringComparison.Ordinal);
        Assert.Contains("port: http", yaml, StringComparison.Ordinal);
        Assert.Contains($"path: {SpegelMetricsExtensions.MetricsPath}", yaml, StringComparison.Ordinal);
        Assert.Contains("grafana_dashboard: \"1\"", yaml, StringComparison.Ordinal);
        Assert.Contains("\"uid\": \"spegel-dapr\"", yaml, StringComparison.Ordinal);

        // Every DaemonSet's app container names its port "http", which the PodMonitor scrapes.
        foreach (var service in new[] { "registry", "indexer", "resolver" })
        {
            var manifest = await File.ReadAllTextAsync(Path.Combine(root, "deploy", "kubernetes", "base", service + ".yaml"));
            Assert.Contains("- name: http", manifest, StringComparison.Ordinal);
            Assert.Contains("app.kubernetes.io/part-of: spegel-dapr", manifest, StringComparison.Ordinal);
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
