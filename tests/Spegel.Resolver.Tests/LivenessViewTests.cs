using Spegel.Core.State;
using Spegel.Resolver.State;
using Xunit.Abstractions;
using static Spegel.Resolver.Tests.TestEvents;

namespace Spegel.Resolver.Tests;

/// <summary>
/// The in-memory node liveness view (docs/resolver.md, "Liveness view"): lookups stop reading every holder's node
/// record, and the promises hold: a silent node leaves at NodeTimeout, a withdrawal shows at once, and what another
/// resolver replica writes to the shared store is seen within LivenessRefresh. Replicas are two harnesses over one
/// store and one clock.
/// </summary>
public sealed class LivenessViewTests(ITestOutputHelper output)
{
    private static readonly string Layer = Digest("liveness-layer");
    private static readonly TimeSpan NodeTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Lookup_100Holders_ReadsNodeRecordsOncePerRefreshNotPerLookup()
    {
        const int holders = 100;
        const int lookups = 50;
        var clock = new ManualClock();
        var store = new CountingKeyValueStore(new InMemoryKeyValueStore(clock));
        using var writer = new ResolverHarness(store, clock);
        using var reader = new ResolverHarness(store, clock);
        var nodes = Enumerable.Range(0, holders).Select(i => $"node-{i:D3}").ToList();
        foreach (var node in nodes)
        {
            await writer.ApplyAsync(Advertised(node, 1, [Layer]));
        }

        var before = store.KeyReads(ResolverKeys.NodePrefix);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < lookups; i++)
        {
            var peers = await reader.PeersAsync(Layer);
            Assert.Equal(10, peers.Count);
            seen.UnionWith(peers);
        }

        var firstWindow = store.KeyReads(ResolverKeys.NodePrefix) - before;
        clock.Advance(Refresh + TimeSpan.FromMilliseconds(500));
        for (var i = 0; i < lookups; i++)
        {
            Assert.Equal(10, (await reader.PeersAsync(Layer)).Count);
        }

        var total = store.KeyReads(ResolverKeys.NodePrefix) - before;
        output.WriteLine($"{2 * lookups} lookups of a {holders}-holder digest over two refresh windows: {total} node-record reads " +
            $"({firstWindow} in the first window; one read per holder per lookup would be {2 * lookups * holders}); {seen.Count} distinct peers answered");

        // One read of every holder when the replica first meets them, one bulk refresh per window after that.
        Assert.Equal(holders, firstWindow);
        Assert.Equal(2 * holders, total);
        Assert.Equal(2, reader.Map.Liveness.Refreshes);

        // At most MaxPeers per answer, but shuffled before the cut: the load still spreads over all holders.
        Assert.True(seen.Count > 30, $"only {seen.Count} of {holders} equally fresh holders were ever answered");
    }

    [Fact]
    public async Task Lookup_ConcurrentLookupsOnStaleView_ShareOneRefresh()
    {
        const int holders = 100;
        var clock = new ManualClock();
        var store = new CountingKeyValueStore(new InMemoryKeyValueStore(clock));
        using var writer = new ResolverHarness(store, clock);
        using var reader = new ResolverHarness(store, clock);
        for (var i = 0; i < holders; i++)
        {
            await writer.ApplyAsync(Advertised($"node-{i:D3}", 1, [Layer]));
        }

        Assert.Equal(10, (await reader.PeersAsync(Layer)).Count);
        clock.Advance(Refresh * 2);
        var refreshes = reader.Map.Liveness.Refreshes;
        var before = store.KeyReads(ResolverKeys.NodePrefix);

        var answers = await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => Task.Run(() => reader.PeersAsync(Layer))));

        var reads = store.KeyReads(ResolverKeys.NodePrefix) - before;
        output.WriteLine($"32 concurrent lookups on a stale view: {reader.Map.Liveness.Refreshes - refreshes} refresh(es), {reads} node-record reads");
        Assert.All(answers, a => Assert.Equal(10, a.Count));
        Assert.Equal(1, reader.Map.Liveness.Refreshes - refreshes);
        Assert.Equal(holders, reads);
    }

    [Fact]
    public async Task Lookup_NodeSilentOnOtherReplica_LeavesWithinNodeTimeoutAndStaysGone()
    {
        var clock = new ManualClock();
        var store = new InMemoryKeyValueStore(clock);
        using var writer = new ResolverHarness(store, clock);
        using var reader = new ResolverHarness(store, clock);
        await writer.ApplyAsync(Advertised("node-silent", 1, [Layer]));
        await writer.ApplyAsync(Advertised("node-beating", 1, [Layer]));

        var step = TimeSpan.FromMilliseconds(250);
        TimeSpan? leftAt = null;
        long seq = 1;
        for (var t = TimeSpan.Zero; t <= NodeTimeout * 3; t += step)
        {
            if (t.Ticks % TimeSpan.FromSeconds(5).Ticks == 0 && t > TimeSpan.Zero)
            {
                // Heartbeats go to the other replica only.
                await writer.ApplyAsync(Heartbeat("node-beating", ++seq));
            }

            var peers = await reader.PeersAsync(Layer);
            Assert.Contains("node-beating", peers);
            if (peers.Contains("node-silent"))
            {
                Assert.Null(leftAt);
            }
            else
            {
                leftAt ??= t;
            }

            clock.Advance(step);
        }

        output.WriteLine($"silent node left the answers {leftAt?.TotalSeconds} s after its last event (NodeTimeout {NodeTimeout.TotalSeconds} s, refresh {Refresh.TotalSeconds} s); the beating node stayed throughout");
        Assert.NotNull(leftAt);
        Assert.InRange(leftAt.Value, NodeTimeout, NodeTimeout + Refresh);
    }

    [Fact]
    public async Task Lookup_HeartbeatAppliedByOtherReplica_KeepsNodeListed()
    {
        var clock = new ManualClock();
        var store = new InMemoryKeyValueStore(clock);
        using var writer = new ResolverHarness(store, clock);
        using var reader = new ResolverHarness(store, clock);
        await writer.ApplyAsync(Advertised("node-a", 1, [Layer]));
        Assert.Equal(["node-a"], await reader.PeersAsync(Layer));

        // The reader last read node-a at 0 s; the heartbeat at 14.9 s goes only to the writer.
        clock.Advance(TimeSpan.FromMilliseconds(14_900));
        await writer.ApplyAsync(Heartbeat("node-a", 2));
        clock.Advance(TimeSpan.FromMilliseconds(600));

        Assert.Equal(["node-a"], await reader.PeersAsync(Layer));
        Assert.Equal(clock.GetUtcNow().ToUnixTimeMilliseconds() - 600, LastSeen(reader, "node-a"));
    }

    [Fact]
    public async Task Lookup_AddressChangedOnOtherReplica_AnsweredWithinRefresh()
    {
        var clock = new ManualClock();
        var store = new InMemoryKeyValueStore(clock);
        using var writer = new ResolverHarness(store, clock);
        using var reader = new ResolverHarness(store, clock);
        await writer.ApplyAsync(Advertised("node-a", 1, [Layer]));
        Assert.Equal(Address("node-a"), Assert.Single((await reader.AskAsync(Layer)).Peers).Url);

        const string moved = "http://10.200.0.7:5000";
        await writer.ApplyAsync(Heartbeat("node-a", 2) with { Address = moved });
        clock.Advance(Refresh);

        Assert.Equal(moved, Assert.Single((await reader.AskAsync(Layer)).Peers).Url);
    }

    [Fact]
    public async Task Lookup_WithdrawnOnOtherReplica_GoneAtOnceAndNeverBack()
    {
        var clock = new ManualClock();
        var store = new InMemoryKeyValueStore(clock);
        using var writer = new ResolverHarness(store, clock);
        using var reader = new ResolverHarness(store, clock);
        await writer.ApplyAsync(Advertised("node-a", 1, [Layer]));
        await writer.ApplyAsync(Advertised("node-b", 1, [Layer]));
        Assert.Equal(["node-a", "node-b"], (await reader.PeersAsync(Layer)).Order());

        // No clock movement: the digest record is read on every lookup, so the view's age does not matter.
        await writer.ApplyAsync(Withdrawn("node-a", 2, [Layer]));
        Assert.Equal(["node-b"], await reader.PeersAsync(Layer));

        // A redelivered older advertisement (to either replica) and later refreshes do not bring it back.
        await reader.ApplyAsync(Advertised("node-a", 1, [Layer]));
        for (var i = 0; i < 5; i++)
        {
            clock.Advance(Refresh);
            Assert.Equal(["node-b"], await reader.PeersAsync(Layer));
            Assert.Equal(["node-b"], await writer.PeersAsync(Layer));
        }
    }

    [Fact]
    public async Task Lookup_ManyFreshnessWindows_AnswersMaxPeersFreshestFirst()
    {
        var clock = new ManualClock();
        using var resolver = new ResolverHarness(clock: clock, configure: o => o.MaxPeers = 4);
        for (var i = 0; i < 12; i++)
        {
            await resolver.ApplyAsync(Advertised($"old-{i:D2}", 1, [Layer]));
        }

        clock.Advance(TimeSpan.FromSeconds(11));
        foreach (var node in new[] { "new-a", "new-b", "new-c" })
        {
            await resolver.ApplyAsync(Advertised(node, 1, [Layer]));
        }

        for (var i = 0; i < 10; i++)
        {
            var peers = await resolver.PeersAsync(Layer);
            Assert.Equal(4, peers.Count);
            Assert.Equal(["new-a", "new-b", "new-c"], peers.Take(3).Order());
            Assert.StartsWith("old-", peers[3], StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Lookup_HolderWithoutNodeRecord_NotAnsweredAndReadOncePerRefresh()
    {
        var clock = new ManualClock();
        var store = new CountingKeyValueStore(new InMemoryKeyValueStore(clock));
        using var resolver = new ResolverHarness(store, clock);
        await resolver.ApplyAsync(Advertised("node-a", 1, [Layer]));
        await resolver.ApplyAsync(Advertised("node-gone", 1, [Layer]));
        await store.TryDeleteAsync(ResolverKeys.Node("node-gone"), etag: null);
        using var reader = new ResolverHarness(store, clock);

        var before = store.KeyReads(ResolverKeys.Node("node-gone"));
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(["node-a"], await reader.PeersAsync(Layer));
        }

        Assert.Equal(1, store.KeyReads(ResolverKeys.Node("node-gone")) - before);
        clock.Advance(Refresh);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(["node-a"], await reader.PeersAsync(Layer));
        }

        Assert.Equal(2, store.KeyReads(ResolverKeys.Node("node-gone")) - before);
    }

    [Theory]
    [InlineData("LivenessRefresh", "00:00:15", "shorter than Spegel:Resolver:NodeTimeout")]
    [InlineData("LivenessRefresh", "00:00:00", "Spegel:Resolver:LivenessRefresh must be a positive duration")]
    [InlineData("MaxPeers", "0", "Spegel:Resolver:MaxPeers must be between 1 and 1000")]
    public void Options_BadLivenessSetting_NamedInError(string name, string value, string expected)
    {
        var options = new ResolverOptions();
        if (name == "MaxPeers")
        {
            options.MaxPeers = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
        }
        else
        {
            options.LivenessRefresh = TimeSpan.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
        }

        var error = Assert.Single(options.Validate());
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("00:00:15", "00:00:01")]
    [InlineData("00:00:01", "00:00:00.250")]
    [InlineData("00:00:02", "00:00:00.500")]
    public void Options_LivenessRefreshUnset_IsOneSecondOrAQuarterOfTheNodeTimeout_AndValid(string nodeTimeout, string expected)
    {
        // A short node timeout (tests, small clusters) must not need the refresh set too.
        var options = new ResolverOptions { NodeTimeout = TimeSpan.Parse(nodeTimeout, System.Globalization.CultureInfo.InvariantCulture) };

        Assert.Equal(TimeSpan.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), options.EffectiveLivenessRefresh);
        Assert.Empty(options.Validate());
    }

    private static long LastSeen(ResolverHarness resolver, string node)
    {
        Assert.True(resolver.Map.Liveness.TryGet(node, out var known));
        return known.LastSeen;
    }
}
