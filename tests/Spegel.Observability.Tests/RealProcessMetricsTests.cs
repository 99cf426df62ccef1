using System.Text.RegularExpressions;
using Spegel.Observability.Tests.Support;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.Observability.Tests;

/// <summary>
/// <c>/metrics</c> of the real service processes (built output, <c>dotnet Spegel.*.dll</c>) around a real pull: two
/// nodes, each a containerd of its own with a registry and an indexer, one resolver, an upstream docker-registry.
/// Node 1 pulls through its registry (a miss, then upstream); node 2 pulls the same image through its registry, from
/// node 1. The scrapes before and after show the series exist on every service and moved.
/// </summary>
public sealed partial class RealProcessMetricsTests(ITestOutputHelper output)
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(15) };

    [Fact]
    public async Task Scrape_RealProcessesAroundARealPull_KeySeriesExistAndMove()
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var image = await new TestImages(upstream).SingleLayerAsync("observability/scraped", "v1");
        await using var cluster = await RealCluster.StartAsync("obs-metrics", upstream);
        var (resolver, node1, node2) = (cluster.Resolver, cluster.Node1, cluster.Node2);
        string Describe() => cluster.Describe();

        var resolverBefore = await ScrapeAsync(resolver);
        var indexerBefore = await ScrapeAsync(node1.Indexer);
        Assert.Equal(0, indexerBefore.Sum("spegel_indexer_images"));

        await cluster.PullOnNode1Async(image);
        var layer = image.NativeBlobs[^1];
        var registry1Before = await ScrapeAsync(node1.Registry);
        var registry2Before = await ScrapeAsync(node2.Registry);

        var second = await node2.Containerd.PullAsync(image.Reference, node2.HostsDirectory);
        Assert.True(second.Succeeded, $"node-2: {second}\n{Describe()}");

        var registry1 = await ScrapeAsync(node1.Registry);
        var registry2 = await ScrapeAsync(node2.Registry);
        var indexer1 = await Eventually.GetAsync(() => ScrapeAsync(node1.Indexer), s => s.Sum("spegel_indexer_images") >= 1, "node-1's indexer counting the image");
        var resolverAfter = await Eventually.GetAsync(() => ScrapeAsync(resolver), s => s.Sum("spegel_resolver_live_nodes") == 2, "two live nodes");
        output.WriteLine($"image {image.Reference}: {image.NativeBlobs.Count} blobs, layer {layer.Size} bytes");

        // Registry of node 2: the pull was served by a peer, counted by outcome, bytes, handler and first byte.
        var peerHits = Delta(registry2Before, registry2, "spegel_registry_mirror_requests_total", ("outcome", "peer"));
        var fetched = Delta(registry2Before, registry2, "spegel_registry_peer_fetched_bytes_total");
        output.WriteLine($"node-2 registry: peer hits +{peerHits}, fetched from peers +{fetched} bytes");
        Assert.True(peerHits >= 2, $"peer hits +{peerHits}\n{registry2.Text}");
        Assert.True(fetched >= layer.Size, $"fetched +{fetched} < layer {layer.Size}");
        Assert.True(Delta(registry2Before, registry2, "spegel_registry_requests_total", ("handler", "blob"), ("method", "GET"), ("status", "200")) >= 1, registry2.Text);
        Assert.True(Delta(registry2Before, registry2, "spegel_registry_time_to_first_byte_seconds_count", ("source", "peer")) >= 2, registry2.Text);
        Assert.True(Delta(registry2Before, registry2, "spegel_registry_resolve_duration_seconds_count") >= 1, registry2.Text);

        // Registry of node 1: it served those bytes to its peer from local content.
        var served = Delta(registry1Before, registry1, "spegel_registry_peer_served_bytes_total");
        output.WriteLine($"node-1 registry: served to peers +{served} bytes");
        Assert.True(served >= layer.Size, $"served +{served} < layer {layer.Size}");

        // Indexer of node 1: the gauges went from 0 to the image; the event counted.
        output.WriteLine($"node-1 indexer: images {indexer1.Sum("spegel_indexer_images")}, digests {indexer1.Sum("spegel_indexer_digests")}, tags {indexer1.Sum("spegel_indexer_tags")}");
        Assert.True(indexer1.Sum("spegel_indexer_digests") >= image.NativeBlobs.Count, indexer1.Text);
        Assert.True(indexer1.Sum("spegel_indexer_tags") >= 1, indexer1.Text);
        Assert.True(Delta(indexerBefore, indexer1, "spegel_indexer_image_events_total", ("type", "create")) >= 1, indexer1.Text);
        Assert.Equal(1, indexer1.Sum("spegel_indexer_connected"));

        // Resolver: events applied, lookups timed, both nodes live.
        var applied = Delta(resolverBefore, resolverAfter, "spegel_resolver_events_total", ("outcome", "applied"));
        var lookups = Delta(resolverBefore, resolverAfter, "spegel_resolver_lookup_duration_seconds_count");
        output.WriteLine($"resolver: events applied +{applied}, lookups +{lookups}, live nodes {resolverAfter.Sum("spegel_resolver_live_nodes")}");
        Assert.True(applied >= 2, resolverAfter.Text);
        Assert.True(lookups >= 2, resolverAfter.Text);

        // The lines docs/operations.md §8 quotes, from this run: node-2's request line for the layer it got from
        // node-1, node-1's miss for it (nobody held it before its own pull), node-1's indexer advertising it.
        var fromPeer = Assert.Single(node2.Registry.Lines, l => l.Contains("\"msg\":\"request\"", StringComparison.Ordinal) && l.Contains($"/blobs/{layer.Digest}", StringComparison.Ordinal) && l.Contains("\"method\":\"GET\"", StringComparison.Ordinal));
        Assert.Contains("\"status\":200", fromPeer, StringComparison.Ordinal);
        Assert.Contains("\"source\":\"node-1\"", fromPeer, StringComparison.Ordinal);
        var miss = node1.Registry.Lines.Where(l => l.Contains("\"msg\":\"mirror miss\"", StringComparison.Ordinal) && l.Contains(layer.Digest.ToString(), StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(miss);
        var advertised = node1.Indexer.Lines.Where(l => l.Contains("\"msg\":\"OCI event\"", StringComparison.Ordinal)).ToList();
        Assert.Contains(advertised, l => l.Contains($"\"key\":\"{layer.Digest}\",\"type\":\"CREATE\"", StringComparison.Ordinal));
        output.WriteLine("--- log lines");
        foreach (var line in new[] { fromPeer, miss[0] }.Concat(node1.Registry.Lines.Where(l => l.Contains($"/blobs/{layer.Digest}", StringComparison.Ordinal) && l.Contains("\"msg\":\"request\"", StringComparison.Ordinal)))
                     .Concat(advertised).Concat(resolver.Lines.Where(l => l.Contains("\"msg\":\"snapshot completed\"", StringComparison.Ordinal)).Take(1)))
        {
            output.WriteLine(line);
        }

        output.WriteLine("--- metrics (node-2 registry, node-1 registry, node-1 indexer, resolver)");
        foreach (var scrape in new[] { registry2, registry1, indexer1, resolverAfter })
        {
            foreach (var line in scrape.Text.Split('\n').Where(l => l.StartsWith("spegel_", StringComparison.Ordinal) && !l.Contains("_bucket", StringComparison.Ordinal) && !l.EndsWith(" 0", StringComparison.Ordinal)))
            {
                output.WriteLine(line);
            }
        }

        output.WriteLine("--- node-2 /v1/status");
        output.WriteLine(await Http.GetStringAsync(new Uri($"{node2.Registry.Url}/v1/status")));

        // Every metric the dashboard queries is in these real scrapes.
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var scrape in new[] { registry1, registry2, indexer1, resolverAfter })
        {
            names.UnionWith(scrape.Names);
        }

        var dashboard = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "monitoring", "grafana-dashboard.json"));
        var missing = MetricName().Matches(dashboard).Select(m => m.Value).Distinct(StringComparer.Ordinal).Where(n => !names.Contains(n)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, "queried by the dashboard, not in the real scrapes: " + string.Join(", ", missing));
    }

    private static async Task<Scrape> ScrapeAsync(SpegelServiceProcess service) => Scrape.Parse(await Http.GetStringAsync(new Uri($"{service.Url}/metrics")));

    private static double Delta(Scrape before, Scrape after, string name, params (string Key, string Value)[] labels) =>
        after.Sum(name, labels) - before.Sum(name, labels);

    [GeneratedRegex("spegel_[a-z0-9_]+")]
    private static partial Regex MetricName();
}
