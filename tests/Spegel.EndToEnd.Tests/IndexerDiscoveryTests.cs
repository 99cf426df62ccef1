using System.Diagnostics;
using System.Globalization;
using System.Net;
using Spegel.Core;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.EndToEnd.Tests.Support;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.EndToEnd.Tests;

/// <summary>
/// Issue 4 (Standalone; pull and removal also over Dapr): the indexer follows a real containerd and the resolver's answers follow the indexer —
/// within a second of a pull or a removal, and within the node timeout of an indexer's death.
/// </summary>
public sealed class IndexerDiscoveryTests(ITestOutputHelper output)
{
    private static readonly TimeSpan OneSecond = TimeSpan.FromSeconds(1);

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task Pull_OnEachOfTwoNodes_ResolverListsNodeForEveryDigestAndTagWithinOneSecond(ClusterTransport transport)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var building = new TestImages(upstream).SmallImagesAsync();
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 2, Transport = transport });
        var images = await building;
        var resolver = cluster.ResolverApi;

        // The first image event an indexer handles after it started pays its JIT start-up (measured at 70–820 ms on
        // this shared two-core machine, depending on its load): reported, and held to a looser bound. Every later
        // one is held to the 1 s of issue 4.
        var latencies = new List<double>();
        foreach (var node in cluster.Nodes)
        {
            foreach (var image in images)
            {
                (await node.PullAsync(image.Reference)).EnsureSuccess();
                var elapsed = await Discovery.WaitAsync(resolver, node.Name, Content.Keys(image), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
                var first = image == images[0];
                output.WriteLine($"[{transport}] {node.Name} {image.Repository}: listed for {Content.Keys(image).Count} keys {elapsed.TotalMilliseconds:0} ms after the pull finished{(first ? " (the indexer's first event since it started)" : string.Empty)}");
                Assert.True(elapsed <= (first ? 3 * OneSecond : OneSecond), $"{node.Name} listed for {image.Reference} only after {elapsed.TotalMilliseconds:0} ms");
                if (!first)
                {
                    latencies.Add(elapsed.TotalMilliseconds);
                }
            }
        }

        // Two holders: both are answered, for every key.
        foreach (var key in images.SelectMany(Content.Keys))
        {
            Assert.Equal(["node-1", "node-2"], (await resolver.NodesAsync(key)).Order());
        }

        output.WriteLine(Invariant($"[{transport}] discovery after pull, warm indexer: p50 {Stats.Percentile(latencies, 50):0} ms, max {latencies.Max():0} ms over {latencies.Count} pulls"));
    }

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task RemoveImage_SharedThenLastReference_WithdrawsTagAtOnceAndDigestsOnlyWhenNoImageUsesThem(ClusterTransport transport)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var testImages = new TestImages(upstream);
        var buildX = testImages.MultiLayerAsync();
        var buildY = testImages.SingleLayerAsync();
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 1, Transport = transport });
        var node = cluster.Node(1);
        var resolver = cluster.ResolverApi;
        var (x, y) = (await buildX, await buildY);

        // A second image record for the same content: every digest of x is shared with it.
        var copy = $"{x.Registry}/{x.Repository}:copy";
        var copyTag = ContentKey.ForTag(Reference.Parse(copy));
        (await node.PullAsync(x.Reference)).EnsureSuccess();
        (await node.PullAsync(y.Reference)).EnsureSuccess();
        (await node.Containerd.CtrAsync(["images", "tag", x.Reference, copy])).EnsureSuccess();
        await Discovery.WaitAsync(resolver, node.Name, [.. Content.Keys(x), .. Content.Keys(y), copyTag], listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
        var digests = x.NativeBlobs.Select(b => ContentKey.ForDigest(b.Digest)).ToList();

        (await node.RemoveImageAsync(x.Reference)).EnsureSuccess();
        var tagGone = await Discovery.WaitAsync(resolver, node.Name, [Content.TagKey(x)], listed: false, TimeSpan.FromSeconds(5), cluster.Describe);
        output.WriteLine($"[{transport}] tag withdrawn {tagGone.TotalMilliseconds:0} ms after `ctr images rm` returned");
        Assert.True(tagGone <= OneSecond, $"tag still listed {tagGone.TotalMilliseconds:0} ms after removal");
        foreach (var key in digests.Append(copyTag))
        {
            Assert.Contains(node.Name, await resolver.NodesAsync(key));
        }

        (await node.RemoveImageAsync(copy)).EnsureSuccess();
        var digestsGone = await Discovery.WaitAsync(resolver, node.Name, [.. digests, copyTag], listed: false, TimeSpan.FromSeconds(5), cluster.Describe);
        output.WriteLine($"[{transport}] digests withdrawn {digestsGone.TotalMilliseconds:0} ms after the last image using them was removed");
        Assert.True(digestsGone <= OneSecond, $"digests still listed {digestsGone.TotalMilliseconds:0} ms after removal");

        // Only what went away was withdrawn.
        foreach (var key in Content.Keys(y))
        {
            Assert.Contains(node.Name, await resolver.NodesAsync(key));
        }
    }

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task KillContainerd_ThenRestart_IndexerReconnectsAndResyncsAdditionsAndRemovals(ClusterTransport transport)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var testImages = new TestImages(upstream);
        var building = Task.WhenAll(testImages.SingleLayerAsync(), testImages.MultiLayerAsync(), testImages.DockerSchema2Async());
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 1, Transport = transport });
        var node = cluster.Node(1);
        var resolver = cluster.ResolverApi;
        var built = await building;
        var (kept, removed, added) = (built[0], built[1], built[2]);
        (await node.PullAsync(kept.Reference)).EnsureSuccess();
        (await node.PullAsync(removed.Reference)).EnsureSuccess();
        await Discovery.WaitAsync(resolver, node.Name, [.. Content.Keys(kept), .. Content.Keys(removed)], listed: true, TimeSpan.FromSeconds(5), cluster.Describe);

        await node.Containerd.KillAsync();
        await Poll.WaitUntilAsync(
            async ct => await node.Indexer!.ProbeAsync("/readyz", ct) is { } s && s != HttpStatusCode.OK,
            TimeSpan.FromSeconds(10),
            "the indexer to notice containerd is gone");

        // A node whose containerd is down stops heartbeating, so it drops out of answers.
        var dropped = await Discovery.WaitAsync(resolver, node.Name, Content.Keys(kept), listed: false, cluster.Options.NodeTimeout + TimeSpan.FromSeconds(3), cluster.Describe);
        output.WriteLine($"node left out of answers {dropped.TotalMilliseconds:0} ms after its indexer lost containerd (node timeout {cluster.Options.NodeTimeout.TotalSeconds} s)");

        await node.Containerd.RestartAsync();
        (await node.RemoveImageAsync(removed.Reference)).EnsureSuccess();
        (await node.PullAsync(added.Reference)).EnsureSuccess();
        var clock = Stopwatch.StartNew();

        // Reconnect backoff is capped at 5 s (Spegel:Indexer:MaxBackoff); the resync follows at once.
        await node.Indexer!.WaitForReadyAsync(TimeSpan.FromSeconds(10));
        await Discovery.WaitAsync(resolver, node.Name, [.. Content.Keys(added), .. Content.Keys(kept)], listed: true, TimeSpan.FromSeconds(10), cluster.Describe);
        await Discovery.WaitAsync(resolver, node.Name, Content.Keys(removed), listed: false, TimeSpan.FromSeconds(10), cluster.Describe);
        output.WriteLine($"resynced {clock.Elapsed.TotalMilliseconds:0} ms after containerd came back and the pull finished");
        Assert.True(node.Indexer.IsRunning, "the indexer must survive containerd going away");
    }

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task KillIndexer_NodeHeldImage_NodeLeavesAnswersWithinNodeTimeoutWhileOthersStay(ClusterTransport transport)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var building = new TestImages(upstream).SingleLayerAsync();
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 2, NodeTimeout = TimeSpan.FromSeconds(3), Transport = transport });
        var image = await building;
        var resolver = cluster.ResolverApi;
        foreach (var node in cluster.Nodes)
        {
            (await node.PullAsync(image.Reference)).EnsureSuccess();
            await Discovery.WaitAsync(resolver, node.Name, Content.Keys(image), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
        }

        await cluster.Node(1).Indexer!.KillAsync();
        var gone = await Discovery.WaitAsync(resolver, "node-1", Content.Keys(image), listed: false, cluster.Options.NodeTimeout + TimeSpan.FromSeconds(5), cluster.Describe);

        output.WriteLine($"killed indexer's node left every answer {gone.TotalMilliseconds:0} ms after the kill (node timeout {cluster.Options.NodeTimeout.TotalSeconds} s, heartbeat {cluster.Options.HeartbeatInterval.TotalSeconds} s)");
        Assert.True(gone <= cluster.Options.NodeTimeout + TimeSpan.FromMilliseconds(500), $"node-1 still answered {gone.TotalMilliseconds:0} ms after its indexer died");
        foreach (var key in Content.Keys(image))
        {
            Assert.Equal(["node-2"], await resolver.NodesAsync(key));
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
