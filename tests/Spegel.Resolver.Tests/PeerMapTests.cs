using System.Text.Json;
using Spegel.Core.Events;
using Spegel.Resolver.Events;
using Spegel.Resolver.State;
using static Spegel.Resolver.Tests.TestEvents;

namespace Spegel.Resolver.Tests;

public sealed class PeerMapTests : IDisposable
{
    private const string Tag = "docker.io/library/nginx:1.27";
    private static readonly string Index = Digest("index");
    private static readonly string Config = Digest("config");
    private static readonly string Layer = Digest("layer");
    private static readonly string Shared = Digest("shared-base-layer");

    private readonly ResolverHarness _resolver = new();

    public void Dispose() => _resolver.Dispose();

    [Fact]
    public async Task Advertise_NewNode_ListsNodeForEachDigestAndTheTag()
    {
        var outcome = await _resolver.ApplyAsync(Advertised("node-a", 1, [Index, Config, Layer], [new TagBinding(Tag, Index)]));

        Assert.Equal(EventOutcome.Applied, outcome);
        foreach (var digest in new[] { Index, Config, Layer })
        {
            Assert.Equal(["node-a"], await _resolver.PeersAsync(digest));
        }

        var tag = await _resolver.AskAsync(Tag);
        Assert.Equal(Index, tag.Digest);
        Assert.Equal(new[] { ("node-a", Address("node-a")) }, tag.Peers.Select(p => (p.Node, p.Url)));
    }

    [Fact]
    public async Task Advertise_FamiliarTagName_AnswersNormalisedKey()
    {
        await _resolver.ApplyAsync(Advertised("node-a", 1, [Index], [new TagBinding("nginx:1.27", Index)]));

        Assert.Equal(["node-a"], await _resolver.PeersAsync("docker.io/library/nginx:1.27"));
        Assert.Equal(["node-a"], await _resolver.PeersAsync("nginx:1.27"));
        Assert.Equal(["node-a"], await _resolver.PeersAsync($"nginx@{Index}"));
    }

    [Fact]
    public async Task Advertise_TwoNodes_BothListed()
    {
        await _resolver.ApplyAsync(Advertised("node-a", 1, [Index, Layer], [new TagBinding(Tag, Index)]));
        await _resolver.ApplyAsync(Advertised("node-b", 1, [Index, Layer], [new TagBinding(Tag, Index)]));

        Assert.Equal(["node-a", "node-b"], (await _resolver.PeersAsync(Layer)).Order());
        Assert.Equal(["node-a", "node-b"], (await _resolver.PeersAsync(Tag)).Order());
    }

    [Fact]
    public async Task Withdraw_AfterAdvertise_RemovesOnlyWithdrawnDigestsAndTag()
    {
        // Two images on one node share a base layer; deleting one withdraws only what is no longer referenced.
        await _resolver.ApplyAsync(Advertised("node-a", 1, [Index, Layer, Shared], [new TagBinding(Tag, Index)]));
        await _resolver.ApplyAsync(Advertised("node-a", 2, [Config, Shared], [new TagBinding("docker.io/library/redis:7", Config)]));

        var outcome = await _resolver.ApplyAsync(Withdrawn("node-a", 3, [Index, Layer], [Tag]));

        Assert.Equal(EventOutcome.Applied, outcome);
        Assert.Empty(await _resolver.PeersAsync(Index));
        Assert.Empty(await _resolver.PeersAsync(Layer));
        Assert.Empty(await _resolver.PeersAsync(Tag));
        Assert.Equal(["node-a"], await _resolver.PeersAsync(Shared));
        Assert.Equal(["node-a"], await _resolver.PeersAsync("docker.io/library/redis:7"));
        var record = await _resolver.Map.ReadDigestAsync(Layer);
        Assert.False(record!.Nodes["node-a"].Held);
    }

    [Fact]
    public async Task Advertise_SameEventTwice_LeavesStoredStateUnchanged()
    {
        var advertised = Advertised("node-a", 1, [Index, Layer], [new TagBinding(Tag, Index)]);
        await _resolver.ApplyAsync(advertised);
        var keys = AllKeys("node-a", [Index, Layer], [Tag]);
        var before = await _resolver.SnapshotAsync(keys);
        _resolver.Clock.Advance(TimeSpan.FromSeconds(3));

        var outcome = await _resolver.ApplyAsync(advertised);

        Assert.Equal(EventOutcome.Unchanged, outcome);
        Assert.Equal(before, await _resolver.SnapshotAsync(keys));
    }

    [Fact]
    public async Task Advertise_OlderEventAfterNewer_LeavesStoredStateUnchanged()
    {
        await _resolver.ApplyAsync(Advertised("node-a", 5, [Index, Layer], [new TagBinding(Tag, Index)]));
        var keys = AllKeys("node-a", [Index, Layer, Config], [Tag]);
        var before = await _resolver.SnapshotAsync(keys);
        _resolver.Clock.Advance(TimeSpan.FromSeconds(3));

        var outcome = await _resolver.ApplyAsync(Withdrawn("node-a", 4, [Index, Layer], [Tag]));
        var older = await _resolver.ApplyAsync(Advertised("node-a", 3, [Index], [new TagBinding(Tag, Config)]));

        Assert.Equal(EventOutcome.Unchanged, outcome);
        Assert.Equal(EventOutcome.Unchanged, older);
        Assert.Equal(before, await _resolver.SnapshotAsync(keys));
        Assert.Equal(Index, (await _resolver.AskAsync(Tag)).Digest);
    }

    [Fact]
    public async Task Advertise_OlderEpochAfterRestart_IsIgnored()
    {
        // The resolver first sees the run stamped Epoch + 1000 at Epoch + 2000: a run stamped Epoch started before
        // that, so its event is a late one of the run before, not a new run.
        using var resolver = new ResolverHarness(clock: new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(Epoch + 2000)));
        await resolver.ApplyAsync(Advertised("node-a", 1, [Index], epoch: Epoch + 1000));

        var outcome = await resolver.ApplyAsync(Withdrawn("node-a", 99, [Index], epoch: Epoch));

        Assert.Equal(EventOutcome.Unchanged, outcome);
        Assert.Equal(["node-a"], await resolver.PeersAsync(Index));
    }

    [Fact]
    public async Task Runs_ClockSteppedBackBetweenStarts_NewRunIsMappedAboveAndItsSnapshotWithdraws()
    {
        // Run A stamps its start 30 s ahead of the real time; NTP corrects the clock and the indexer restarts 10 s
        // later: run B's epoch is 20 s below A's. B's snapshot no longer states Layer (removed while it restarted).
        var clock = new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(Epoch));
        using var resolver = new ResolverHarness(clock: clock);
        const long runA = Epoch + 30_000;
        const long runB = Epoch + 10_000;
        await resolver.ApplyAsync(Advertised("node-a", 1, [Index, Layer], [new TagBinding(Tag, Index)], epoch: runA));
        clock.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal(EventOutcome.Applied, await resolver.ApplyAsync(Snapshot("node-a", 1, 1, 1, 1, [Index], [new TagBinding(Tag, Index)], epoch: runB)));
        Assert.Equal(EventOutcome.Applied, await resolver.ApplyAsync(Heartbeat("node-a", 2, epoch: runB)));

        Assert.Equal(["node-a"], await resolver.PeersAsync(Index));
        Assert.Equal(["node-a"], await resolver.PeersAsync(Tag));
        Assert.Empty(await resolver.PeersAsync(Layer));
        var node = await resolver.Map.ReadNodeAsync("node-a");
        Assert.Equal(new EventStamp(runA + 1, 2), node!.LastStamp);
        Assert.Equal([(runA, runA), (runB, runA + 1)], node.Runs.Select(r => (r.Raw, r.Epoch)));

        // A late event of run A (redelivered after B started) stays older than everything B said.
        Assert.Equal(EventOutcome.Unchanged, await resolver.ApplyAsync(Advertised("node-a", 7, [Layer], epoch: runA)));
        Assert.Empty(await resolver.PeersAsync(Layer));

        // Run B goes on: its later events apply as usual.
        await resolver.ApplyAsync(Withdrawn("node-a", 3, [Index], [Tag], epoch: runB));
        Assert.Empty(await resolver.PeersAsync(Index));
    }

    [Fact]
    public async Task Runs_ManyRestarts_OnlyTheRecentAreKept_AndAnOldRunsLateEventIsStillIgnored()
    {
        var clock = new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(Epoch));
        using var resolver = new ResolverHarness(clock: clock);
        for (var run = 0; run < PeerMap.RememberedRuns + 8; run++)
        {
            await resolver.ApplyAsync(Heartbeat("node-a", 1, epoch: Epoch + (run * 1000)));
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        await resolver.ApplyAsync(Advertised("node-a", 2, [Index], epoch: Epoch + ((PeerMap.RememberedRuns + 7) * 1000)));
        var node = await resolver.Map.ReadNodeAsync("node-a");
        Assert.Equal(PeerMap.RememberedRuns, node!.Runs.Count);

        // The first run is no longer remembered; its late withdrawal started long before the newest run was seen.
        Assert.Equal(EventOutcome.Unchanged, await resolver.ApplyAsync(Withdrawn("node-a", 50, [Index], epoch: Epoch)));
        Assert.Equal(["node-a"], await resolver.PeersAsync(Index));
    }

    [Fact]
    public async Task Runs_RecordWrittenBeforeRunsWereKept_LowerEpochCountsOnlyWhenItStartedAfterTheLastEvent()
    {
        var clock = new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(Epoch));
        using var resolver = new ResolverHarness(clock: clock);
        const long runA = Epoch + 30_000;
        await resolver.ApplyAsync(Advertised("node-a", 1, [Index, Layer], epoch: runA));
        Assert.Equal(UpdateOutcome.Committed, await resolver.Map.Nodes.UpdateAsync(ResolverKeys.Node("node-a"), r =>
        {
            r.Runs.Clear();
            return true;
        }));
        clock.Advance(TimeSpan.FromSeconds(5));

        // Stamped before the last event was seen (Epoch): a late event of an earlier run.
        Assert.Equal(EventOutcome.Unchanged, await resolver.ApplyAsync(Withdrawn("node-a", 9, [Layer], epoch: Epoch - 1000)));
        Assert.Equal(["node-a"], await resolver.PeersAsync(Layer));

        // Stamped after it: a restart with a stepped-back clock.
        Assert.Equal(EventOutcome.Applied, await resolver.ApplyAsync(Withdrawn("node-a", 1, [Layer], epoch: Epoch + 4000)));
        Assert.Empty(await resolver.PeersAsync(Layer));
        Assert.Equal(["node-a"], await resolver.PeersAsync(Index));
    }

    [Fact]
    public async Task Withdraw_ThenRedeliveredOlderAdvertise_DoesNotResurrect()
    {
        var advertised = Advertised("node-a", 1, [Index, Layer], [new TagBinding(Tag, Index)]);
        await _resolver.ApplyAsync(advertised);
        await _resolver.ApplyAsync(Withdrawn("node-a", 2, [Index, Layer], [Tag]));

        var outcome = await _resolver.ApplyAsync(advertised);

        Assert.Equal(EventOutcome.Unchanged, outcome);
        Assert.Empty(await _resolver.PeersAsync(Index));
        Assert.Empty(await _resolver.PeersAsync(Tag));
    }

    [Fact]
    public async Task Withdraw_ArrivingBeforeItsAdvertise_LeavesTombstoneThatWins()
    {
        // Reordered delivery: the withdrawal (seq 2) overtakes the advertisement (seq 1).
        await _resolver.ApplyAsync(Heartbeat("node-a", 0));
        await _resolver.ApplyAsync(Withdrawn("node-a", 2, [Layer]));
        await _resolver.ApplyAsync(Advertised("node-a", 1, [Layer]));

        Assert.Empty(await _resolver.PeersAsync(Layer));
    }

    [Fact]
    public async Task Snapshot_AllPartsArrived_WithdrawsStaleEntriesFromStore()
    {
        await _resolver.ApplyAsync(Advertised("node-a", 1, [Index, Layer], [new TagBinding(Tag, Index)]));
        await _resolver.ApplyAsync(Advertised("node-a", 2, [Config]));
        await _resolver.ApplyAsync(Advertised("node-b", 1, [Layer]));

        // The indexer restarts (new epoch): Layer was deleted while it was away; the snapshot states Index, Config, Shared.
        const long epoch2 = Epoch + 60_000;
        await _resolver.ApplyAsync(Snapshot("node-a", 1, 1, 1, 2, [Index, Shared], [new TagBinding(Tag, Index)], epoch: epoch2));
        Assert.Equal(["node-a", "node-b"], (await _resolver.PeersAsync(Layer)).Order());

        await _resolver.ApplyAsync(Snapshot("node-a", 2, 1, 2, 2, [Config], epoch: epoch2));

        Assert.Equal(["node-b"], await _resolver.PeersAsync(Layer));
        Assert.Equal(["node-a"], await _resolver.PeersAsync(Index));
        Assert.Equal(["node-a"], await _resolver.PeersAsync(Config));
        Assert.Equal(["node-a"], await _resolver.PeersAsync(Shared));
        Assert.Equal(["node-a"], await _resolver.PeersAsync(Tag));
        var layer = await _resolver.Map.ReadDigestAsync(Layer);
        Assert.Equal(["node-b"], layer!.Nodes.Keys);
        var index = await _resolver.Map.ReadIndexAsync("node-a");
        Assert.DoesNotContain(ResolverKeys.Digest(Layer), index);
        Assert.Contains(ResolverKeys.Digest(Shared), index);
        var node = await _resolver.Map.ReadNodeAsync("node-a");
        Assert.Equal(new EventStamp(epoch2, 1), node!.Floor);
        Assert.Null(node.Snapshot);
    }

    [Fact]
    public async Task Snapshot_EventOlderThanCompletedSnapshot_IsIgnored()
    {
        await _resolver.ApplyAsync(Snapshot("node-a", 10, 10, 1, 1, [Index]));

        var outcome = await _resolver.ApplyAsync(Advertised("node-a", 9, [Layer]));

        Assert.Equal(EventOutcome.Unchanged, outcome);
        Assert.Empty(await _resolver.PeersAsync(Layer));
        Assert.Null(await _resolver.Map.ReadDigestAsync(Layer));
    }

    [Fact]
    public async Task Snapshot_PartsOfSupersededSnapshot_DoNotComplete()
    {
        await _resolver.ApplyAsync(Advertised("node-a", 1, [Layer]));
        await _resolver.ApplyAsync(Snapshot("node-a", 2, 2, 1, 2, [Index]));
        // The indexer reconnected and started over before part 1 of snapshot 2 was sent.
        await _resolver.ApplyAsync(Snapshot("node-a", 5, 5, 1, 2, [Index]));
        await _resolver.ApplyAsync(Snapshot("node-a", 3, 2, 2, 2, [Config]));

        Assert.Equal(["node-a"], await _resolver.PeersAsync(Layer));

        await _resolver.ApplyAsync(Snapshot("node-a", 6, 5, 2, 2, [Config]));

        Assert.Empty(await _resolver.PeersAsync(Layer));
        Assert.Equal(["node-a"], await _resolver.PeersAsync(Config));
    }

    [Fact]
    public async Task Lookup_NodeSilentPastTimeout_IsLeftOutUntilHeartbeat()
    {
        // The node's own clock is years off: only this resolver's receive time counts.
        await _resolver.ApplyAsync(Advertised("node-a", 1, [Layer]) with { Timestamp = DateTimeOffset.UnixEpoch });
        await _resolver.ApplyAsync(Advertised("node-b", 1, [Layer]) with { Timestamp = DateTimeOffset.MaxValue.AddDays(-1) });

        _resolver.Clock.Advance(TimeSpan.FromSeconds(10));
        await _resolver.ApplyAsync(Heartbeat("node-b", 2));
        _resolver.Clock.Advance(TimeSpan.FromSeconds(6));

        Assert.Equal(["node-b"], await _resolver.PeersAsync(Layer));

        await _resolver.ApplyAsync(Heartbeat("node-a", 2));

        Assert.Equal(["node-a", "node-b"], (await _resolver.PeersAsync(Layer)).Order());
    }

    [Fact]
    public async Task Lookup_RedeliveredOldHeartbeat_DoesNotReviveNode()
    {
        await _resolver.ApplyAsync(Advertised("node-a", 2, [Layer]));
        _resolver.Clock.Advance(TimeSpan.FromSeconds(20));

        await _resolver.ApplyAsync(Heartbeat("node-a", 1));

        Assert.Empty(await _resolver.PeersAsync(Layer));
    }

    [Fact]
    public async Task Lookup_TagBoundToTwoDigests_AnswersOnlyNewest()
    {
        var older = Digest("nginx-1.27-old");
        var newer = Digest("nginx-1.27-new");
        await _resolver.ApplyAsync(Advertised("node-a", 1, [older], [new TagBinding(Tag, older)]));
        _resolver.Clock.Advance(TimeSpan.FromSeconds(1));
        await _resolver.ApplyAsync(Advertised("node-b", 1, [newer], [new TagBinding(Tag, newer)]));
        _resolver.Clock.Advance(TimeSpan.FromSeconds(1));
        // node-a re-states its old binding (a snapshot after restart): that must not make the old digest newest.
        await _resolver.ApplyAsync(Advertised("node-a", 2, [older], [new TagBinding(Tag, older)]));

        var answer = await _resolver.AskAsync(Tag);

        Assert.Equal(newer, answer.Digest);
        Assert.Equal(["node-b"], answer.Peers.Select(p => p.Node));
        Assert.Equal(["node-a"], await _resolver.PeersAsync(older));
    }

    [Fact]
    public async Task Lookup_NewestDigestOnlyOnDeadNode_AnswersNobody()
    {
        var older = Digest("old");
        var newer = Digest("new");
        await _resolver.ApplyAsync(Advertised("node-a", 1, [older], [new TagBinding(Tag, older)]));
        _resolver.Clock.Advance(TimeSpan.FromSeconds(1));
        await _resolver.ApplyAsync(Advertised("node-b", 1, [newer], [new TagBinding(Tag, newer)]));
        _resolver.Clock.Advance(TimeSpan.FromSeconds(10));
        await _resolver.ApplyAsync(Heartbeat("node-a", 2));
        _resolver.Clock.Advance(TimeSpan.FromSeconds(10));

        var answer = await _resolver.AskAsync(Tag);

        Assert.Equal(newer, answer.Digest);
        Assert.Empty(answer.Peers);
    }

    [Fact]
    public async Task Lookup_Exclude_LeavesThatNodeOut()
    {
        await _resolver.ApplyAsync(Advertised("node-a", 1, [Layer], [new TagBinding(Tag, Layer)]));
        await _resolver.ApplyAsync(Advertised("node-b", 1, [Layer], [new TagBinding(Tag, Layer)]));

        Assert.Equal(["node-b"], await _resolver.PeersAsync(Layer, exclude: "node-a"));
        Assert.Equal(["node-a"], await _resolver.PeersAsync(Tag, exclude: "node-b"));
    }

    [Fact]
    public async Task Lookup_DifferentFreshness_FreshestFirst()
    {
        await _resolver.ApplyAsync(Advertised("node-old", 1, [Layer]));
        _resolver.Clock.Advance(TimeSpan.FromSeconds(11));
        await _resolver.ApplyAsync(Advertised("node-new", 1, [Layer]));
        await _resolver.ApplyAsync(Heartbeat("node-old", 2));

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(["node-new", "node-old"], await _resolver.PeersAsync(Layer));
        }
    }

    [Fact]
    public async Task Lookup_EqualFreshness_SpreadsFirstPlace()
    {
        foreach (var node in new[] { "node-a", "node-b", "node-c" })
        {
            await _resolver.ApplyAsync(Advertised(node, 1, [Layer]));
        }

        var firsts = new HashSet<string>();
        for (var i = 0; i < 60 && firsts.Count < 3; i++)
        {
            firsts.Add((await _resolver.PeersAsync(Layer))[0]);
        }

        Assert.Equal(3, firsts.Count);
    }

    [Fact]
    public async Task Withdraw_TombstoneOlderThanRetention_CollectedOnNextWrite()
    {
        await _resolver.ApplyAsync(Advertised("node-a", 1, [Layer]));
        await _resolver.ApplyAsync(Withdrawn("node-a", 2, [Layer]));
        _resolver.Clock.Advance(TimeSpan.FromHours(2));

        await _resolver.ApplyAsync(Advertised("node-b", 1, [Layer]));

        var record = await _resolver.Map.ReadDigestAsync(Layer);
        Assert.Equal(["node-b"], record!.Nodes.Keys);
    }

    [Fact]
    public async Task Heartbeat_UnknownNode_CreatesRecordWithTimeToLive()
    {
        await _resolver.ApplyAsync(Heartbeat("node-a", 1));

        var node = await _resolver.Map.ReadNodeAsync("node-a");
        Assert.Equal(Address("node-a"), node!.Address);
        Assert.Equal(5000, node.HeartbeatIntervalMs);
        Assert.Equal(_resolver.Clock.GetUtcNow().ToUnixTimeMilliseconds(), node.LastSeen);

        _resolver.Clock.Advance(TimeSpan.FromHours(25));

        Assert.Null(await _resolver.Map.ReadNodeAsync("node-a"));
    }

    [Fact]
    public async Task Advertise_StoredDigestRecord_HasDocumentedShape()
    {
        await _resolver.ApplyAsync(Advertised("node-a", 7, [Layer]));

        var raw = await _resolver.Store.GetAsync(ResolverKeys.Digest(Layer));
        using var json = JsonDocument.Parse(raw!.Value);
        var entry = json.RootElement.GetProperty("nodes").GetProperty("node-a");

        Assert.Equal(Epoch, entry.GetProperty("epoch").GetInt64());
        Assert.Equal(7, entry.GetProperty("seq").GetInt64());
        Assert.True(entry.GetProperty("held").GetBoolean());
        Assert.Equal(_resolver.Clock.GetUtcNow().ToUnixTimeMilliseconds(), entry.GetProperty("at").GetInt64());
    }

    private static IEnumerable<string> AllKeys(string node, IEnumerable<string> digests, IEnumerable<string> tags) =>
        digests.Select(ResolverKeys.Digest)
            .Concat(tags.Select(ResolverKeys.Tag))
            .Append(ResolverKeys.Node(node))
            .Concat(Enumerable.Range(0, new ResolverOptions().IndexChunks).Select(i => ResolverKeys.IndexChunk(node, i)));
}
