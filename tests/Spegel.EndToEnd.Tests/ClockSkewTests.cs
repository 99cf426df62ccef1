using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.EndToEnd.Tests.Support;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.EndToEnd.Tests;

/// <summary>
/// Issue 10: nodes whose clocks are ±30 s off. Node 1's indexer runs 30 s fast, node 2's 30 s slow, through
/// libfaketime (Debian package <c>faketime</c>) preloaded into those processes only, with a relative <c>FAKETIME</c>
/// offset; the monotonic clock (timers, heartbeat period) is left true with <c>DONT_FAKE_MONOTONIC=1</c>, as NTP skew
/// leaves it. The nodes' stamps (epoch = the indexer's start time) and event timestamps carry the skew; the resolver
/// judges liveness and ages by its own clock. Asserted: a removed image leaves lookups and stays out through later heartbeats and snapshots
/// (resyncs every 5 s here), and no live node, skewed or not, is ever dropped.
/// </summary>
public sealed class ClockSkewTests(ITestOutputHelper output)
{
    private const string LibFakeTime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task SkewedNodes_RemovedImageStaysWithdrawn_LiveNodesNeverDropped(ClusterTransport transport)
    {
        Assert.True(File.Exists(LibFakeTime), $"{LibFakeTime} is missing: install the Debian package faketime (apt-get install faketime)");
        await using var upstream = await UpstreamRegistry.StartAsync();
        var testImages = new TestImages(upstream);
        var building = Task.WhenAll(testImages.SingleLayerAsync(), testImages.MultiLayerAsync());

        // Node 1 runs 30 s fast, node 2 30 s slow, node 3 on time: both signs in one cluster.
        var skews = new Dictionary<string, int>(StringComparer.Ordinal) { ["node-1"] = 30, ["node-2"] = -30 };
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions
        {
            Nodes = 3,
            Transport = transport,
            IndexerArguments = ["--Spegel:Indexer:ResyncInterval=00:00:05"],
            IndexerEnvironment = node => skews.TryGetValue(node, out var skew) ? FakeTime(skew) : null,
        });
        var built = await building;
        var (kept, removed) = (built[0], built[1]);
        var honest = cluster.Node(3);
        var skewed = new[] { cluster.Node(1), cluster.Node(2) };
        var resolver = cluster.ResolverApi;

        // The skew is real: each node's epoch (its indexer's start time by its own clock) is off by its skew. The
        // indexers started together, so the epochs differ by the skew, give or take a loaded machine's start spread.
        var honestOffset = await EpochOffsetAsync(honest);
        foreach (var node in skewed)
        {
            var measured = (await EpochOffsetAsync(node) - honestOffset).TotalSeconds;
            output.WriteLine(Invariant($"[{transport}] {node.Name}'s indexer runs {measured:+0.0;-0.0} s off node 3's (set: {skews[node.Name]:+0;-0} s)"));
            Assert.InRange(measured, skews[node.Name] - 5, skews[node.Name] + 5);
        }

        foreach (var node in skewed)
        {
            foreach (var image in built)
            {
                (await node.PullAsync(image.Reference)).EnsureSuccess();
            }
        }

        (await honest.PullAsync(kept.Reference)).EnsureSuccess();
        foreach (var node in skewed)
        {
            await Discovery.WaitAsync(resolver, node.Name, [.. Content.Keys(kept), .. Content.Keys(removed)], listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
        }

        await Discovery.WaitAsync(resolver, honest.Name, Content.Keys(kept), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);

        var onlyRemoved = Content.Keys(removed).Except(Content.Keys(kept)).ToList();
        foreach (var node in skewed)
        {
            (await node.RemoveImageAsync(removed.Reference)).EnsureSuccess();
            var gone = await Discovery.WaitAsync(resolver, node.Name, onlyRemoved, listed: false, TimeSpan.FromSeconds(5), cluster.Describe);
            output.WriteLine(Invariant($"[{transport}] {node.Name} ({skews[node.Name]:+0;-0} s): removed image left lookups {gone.TotalMilliseconds:0} ms after `ctr images rm`"));
            Assert.True(gone <= TimeSpan.FromSeconds(2), Invariant($"{node.Name}: the removed image was still listed {gone.TotalMilliseconds:0} ms after removal"));
        }

        // Watch through several node timeouts, heartbeats and at least two resync snapshots of each skewed node.
        var watch = Stopwatch.StartNew();
        var checks = 0;
        var watchFor = TimeSpan.FromSeconds(12);
        while (watch.Elapsed < watchFor)
        {
            foreach (var key in onlyRemoved)
            {
                var nodes = await resolver.NodesAsync(key);
                Assert.True(nodes.Count == 0, Invariant($"{key} resurrected for [{string.Join(", ", nodes)}] {watch.Elapsed.TotalMilliseconds:0} ms into the watch\n{cluster.Describe()}"));
            }

            foreach (var key in Content.Keys(kept))
            {
                var nodes = await resolver.NodesAsync(key);
                Assert.True(nodes.Order(StringComparer.Ordinal).SequenceEqual(["node-1", "node-2", "node-3"]), Invariant($"{key}: [{string.Join(", ", nodes)}] {watch.Elapsed.TotalMilliseconds:0} ms into the watch: a live node was dropped\n{cluster.Describe()}"));
            }

            checks++;
            await Task.Delay(200);
        }

        var resyncs = skewed.Select(n => n.Indexer!.Lines.Count(l => l.Contains("\"msg\":\"resynced", StringComparison.Ordinal))).ToList();
        output.WriteLine(Invariant($"[{transport}] {checks} checks over {watchFor.TotalSeconds} s (node timeout {cluster.Options.NodeTimeout.TotalSeconds} s): removed image never back, all three holders always listed; skewed indexers resynced {string.Join(" and ", resyncs)} times"));
        Assert.All(resyncs, r => Assert.True(r >= 3, $"expected each skewed indexer's start snapshot and two resyncs, saw {r}"));
    }

    /// <summary>
    /// The other side of skew: a node's clock 30 s fast is corrected (NTP steps it back) and its indexer restarts
    /// within those 30 s, so the new run's epoch (its start time) is lower than the old run's. Meanwhile an image was
    /// removed. Asserted: the restarted indexer's events are taken (the node stays listed for what it holds) and its
    /// start snapshot withdraws the removed image.
    /// </summary>
    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task ClockSteppedBack_IndexerRestarted_NodeStaysListedAndRemovalWithdrawn(ClusterTransport transport)
    {
        Assert.True(File.Exists(LibFakeTime), $"{LibFakeTime} is missing: install the Debian package faketime (apt-get install faketime)");
        await using var upstream = await UpstreamRegistry.StartAsync();
        var testImages = new TestImages(upstream);
        var building = Task.WhenAll(testImages.SingleLayerAsync(), testImages.MultiLayerAsync());
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions
        {
            Nodes = 1,
            Transport = transport,
            IndexerEnvironment = node => FakeTime(30),
        });
        var built = await building;
        var (kept, removed) = (built[0], built[1]);
        var node = cluster.Node(1);
        var resolver = cluster.ResolverApi;
        foreach (var image in built)
        {
            (await node.PullAsync(image.Reference)).EnsureSuccess();
        }

        await Discovery.WaitAsync(resolver, node.Name, [.. Content.Keys(kept), .. Content.Keys(removed)], listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
        var before = await EpochOffsetAsync(node);

        // The clock is corrected; the indexer restarts (a rollout, a crash) with the image removed in between.
        await node.Indexer!.StopAsync();
        (await node.RemoveImageAsync(removed.Reference)).EnsureSuccess();
        node.Indexer.EnvironmentOverrides["LD_PRELOAD"] = string.Empty;
        node.Indexer.EnvironmentOverrides["FAKETIME"] = string.Empty;
        await node.Indexer.RestartAsync();
        var after = await EpochOffsetAsync(node);
        output.WriteLine(Invariant($"[{transport}] epoch − now: {before.TotalSeconds:+0.0;-0.0} s before, {after.TotalSeconds:+0.0;-0.0} s after the restart (the new epoch is {(before > after ? "lower" : "higher")})"));

        // Converged = at the same moment the removed image is out and the kept one is listed. Either alone can hold
        // by accident: right after the restart the old run is still live (everything listed), and once its last
        // heartbeat ages past the node timeout before the new run is heard, the node is out of every answer. Without
        // the new run's events taken, this state is never reached.
        var onlyRemoved = Content.Keys(removed).Except(Content.Keys(kept)).ToList();
        var converging = Stopwatch.StartNew();
        var converged = Poll.WaitUntilAsync(
            async ct =>
            {
                foreach (var key in onlyRemoved)
                {
                    if ((await resolver.NodesAsync(key, ct)).Contains(node.Name))
                    {
                        return false;
                    }
                }

                foreach (var key in Content.Keys(kept))
                {
                    if (!(await resolver.NodesAsync(key, ct)).Contains(node.Name))
                    {
                        return false;
                    }
                }

                return true;
            },
            TimeSpan.FromSeconds(15),
            $"{node.Name} listed for the kept image and not for the removed one, after its indexer restarted with an earlier clock",
            TimeSpan.FromMilliseconds(10));
        try
        {
            await converged;
        }
        catch (TimeoutException ex)
        {
            Assert.Fail($"{ex.Message}\n{cluster.Describe()}");
        }

        output.WriteLine(Invariant($"[{transport}] removed image out and kept image listed {converging.Elapsed.TotalMilliseconds:0} ms after the restart"));

        // Listed for what it holds through several node timeouts: the restarted run's heartbeats count.
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < cluster.Options.NodeTimeout * 3)
        {
            foreach (var key in Content.Keys(kept))
            {
                Assert.True((await resolver.NodesAsync(key)).Contains(node.Name), Invariant($"{key}: the node was dropped {watch.Elapsed.TotalMilliseconds:0} ms into the watch after its indexer restarted with an earlier clock\n{cluster.Describe()}"));
            }

            await Task.Delay(200);
        }
    }

    private static Dictionary<string, string> FakeTime(int skewSeconds) => new(StringComparer.Ordinal)
    {
        ["LD_PRELOAD"] = LibFakeTime,
        ["FAKETIME"] = Invariant($"{skewSeconds:+0;-0}s"),
        ["DONT_FAKE_MONOTONIC"] = "1",
    };

    /// <summary>The node's epoch (its indexer's start time by its own clock) minus the real time now: the skew, less the time since it started.</summary>
    private static async Task<TimeSpan> EpochOffsetAsync(ClusterNode node)
    {
        using var status = await Http.GetFromJsonAsync<JsonDocument>(new Uri(node.Indexer!.BaseUri, "/v1/status"));
        var epoch = status!.RootElement.GetProperty("epoch").GetInt64();
        return TimeSpan.FromMilliseconds(epoch - DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
