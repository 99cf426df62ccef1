using System.Diagnostics;
using System.Globalization;
using System.Net;
using Spegel.Core;
using Spegel.Core.Events;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.EndToEnd.Tests.Support;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.EndToEnd.Tests;

/// <summary>Issue 5: nodes pull through their own registry from the peers that hold the content, the upstream long gone.</summary>
public sealed class MirrorPullTests(ITestOutputHelper output)
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task Pull_OnNodesTwoAndThreeWithUpstreamStopped_ByTagAndByDigest_ContentEqualOnAllNodes(ClusterTransport transport)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var building = new TestImages(upstream).SmallImagesAsync();
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 3, Transport = transport });
        var images = await building;
        var resolver = cluster.ResolverApi;
        var (node1, node2, node3) = (cluster.Node(1), cluster.Node(2), cluster.Node(3));

        // Node 1 pulls as any node does, through its own registry: nobody holds it yet, so a fast 404 and then upstream.
        foreach (var image in images)
        {
            (await node1.PullAsync(image.Reference)).EnsureSuccess();
            var discovery = await Discovery.WaitAsync(resolver, node1.Name, Content.Keys(image), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
            output.WriteLine($"[{transport}] discovery {image.Repository}: resolvable {discovery.TotalMilliseconds:0} ms after the pull finished");
        }

        await upstream.StopAsync();
        Assert.False(await Ports.IsListeningAsync(upstream.Port));

        // Node 2 by tag, node 3 by digest, both at once: each only through its own registry (hosts.toml) to its peers.
        async Task PullAllAsync(ClusterNode node, Func<TestImage, string> reference)
        {
            foreach (var image in images)
            {
                var pull = await node.PullAsync(reference(image));
                Assert.True(pull.Succeeded, $"{node.Name}: {pull}\n{cluster.Describe()}");
            }
        }

        await Task.WhenAll(PullAllAsync(node2, i => i.Reference), PullAllAsync(node3, i => i.DigestReference));

        foreach (var image in images)
        {
            foreach (var node in cluster.Nodes)
            {
                await Content.AssertHoldsAsync(node.Containerd, image.NativeBlobs, node.Name);
            }
        }

        // The bytes came from peers (never from upstream: it is down), and the new holders are resolvable too.
        Assert.Contains(node2.Registry.Lines, l => l.Contains("\"handler\":\"blob\"", StringComparison.Ordinal) && l.Contains("\"source\":\"node-", StringComparison.Ordinal));
        Assert.Contains(node3.Registry.Lines, l => l.Contains("\"handler\":\"blob\"", StringComparison.Ordinal) && l.Contains("\"source\":\"node-", StringComparison.Ordinal));
        foreach (var node in new[] { node2, node3 })
        {
            await Discovery.WaitAsync(resolver, node.Name, images.SelectMany(i => i.NativeBlobs).Select(b => b.Digest.ToString()), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
        }

        if (transport == ClusterTransport.Dapr)
        {
            // It went through the sidecars: events published and delivered over the backplane, the resolver's state in
            // the shared store under the component's name prefix. (The registries were given no resolver URL: their
            // lookups could only go through their sidecar's invoke endpoint to app-id "resolver".)
            var counters = cluster.Backplane!.Counters;
            output.WriteLine($"[Dapr] backplane: {counters}");
            Assert.True(counters.Published > 0 && counters.Delivered > 0, $"no pub/sub traffic on the backplane: {counters}");
            var keys = cluster.Backplane.GetStoredKeys(ContentTopics.DefaultStateStore);
            Assert.NotEmpty(keys);
            Assert.All(keys, k => Assert.StartsWith(ContentTopics.DefaultStateStore + "||", k, StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task Get_ResolverStopped_RegistryAnswers404Within50msAndPullGoesUpstream(ClusterTransport transport)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var building = new TestImages(upstream).SingleLayerAsync();
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 2, Transport = transport });
        var image = await building;
        var (node1, node2) = (cluster.Node(1), cluster.Node(2));
        (await node1.PullAsync(image.Reference)).EnsureSuccess();
        await Discovery.WaitAsync(cluster.ResolverApi, node1.Name, Content.Keys(image), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
        var layer = image.NativeBlobs.MaxBy(b => b.Size)!;
        var blob = new Uri(node2.Registry.BaseUri, $"/v2/{image.Repository}/blobs/{layer.Digest}?ns={image.Registry}");

        // With the resolver up, node 2's registry serves node 1's layer: the 404 below is the resolver's absence, nothing else.
        using (var served = await Http.GetAsync(blob))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
            Assert.Equal(layer.Digest, Digest.ComputeSha256(await served.Content.ReadAsByteArrayAsync()));
        }

        await cluster.Resolver!.StopAsync();
        await Poll.WaitUntilAsync(async ct => (await StatusAsync(blob, ct)).Status == HttpStatusCode.NotFound, TimeSpan.FromSeconds(5), "the cached lookup to expire");

        for (var i = 0; i < 5; i++)
        {
            await StatusAsync(blob, default);
        }

        var latencies = new List<double>();
        for (var i = 0; i < 40; i++)
        {
            var (status, elapsed) = await StatusAsync(blob, default);
            Assert.Equal(HttpStatusCode.NotFound, status);
            latencies.Add(elapsed.TotalMilliseconds);
        }

        var (p50, p90, max) = (Stats.Percentile(latencies, 50), Stats.Percentile(latencies, 90), latencies.Max());
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"resolver down, blob GET → 404: p50 {p50:0.0} ms, p90 {p90:0.0} ms, max {max:0.0} ms over {latencies.Count} requests"));

        // 50 ms for the typical answer; every answer well below the resolver client's 500 ms connect timeout and the
        // 1 s mirror budget, so a path that waits on either fails. (This machine is shared: one scheduling hiccup
        // of a loaded two-core box can exceed 50 ms on its own, which is why the max is not held to 50 ms.)
        Assert.True(p90 < 50, $"404 took {p90:0.0} ms at p90 with the resolver down: {string.Join(' ', latencies)}");
        Assert.True(max < 250, $"404 took up to {max:0.0} ms with the resolver down: {string.Join(' ', latencies)}");

        var clock = Stopwatch.StartNew();
        var pull = await node2.PullAsync(image.Reference);
        Assert.True(pull.Succeeded, $"{pull}\n{cluster.Describe()}");
        output.WriteLine($"ctr pull on node 2 with the resolver down (via its registry's 404s to upstream): {clock.Elapsed.TotalMilliseconds:0} ms");
        await Content.AssertHoldsAsync(node2.Containerd, image.NativeBlobs, node2.Name);
        Assert.Contains(node2.Registry.Lines, l => l.Contains("resolver unavailable", StringComparison.Ordinal));
    }

    private static async Task<(HttpStatusCode Status, TimeSpan Elapsed)> StatusAsync(Uri uri, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        using var response = await Http.GetAsync(uri, ct);
        await response.Content.ReadAsByteArrayAsync(ct);
        return (response.StatusCode, clock.Elapsed);
    }
}
