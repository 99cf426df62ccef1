using System.Text.Json;
using Spegel.Core;
using Spegel.Core.Events;

namespace Spegel.Indexer.Tests;

public class IndexerWorkerTests
{
    [Fact]
    public async Task Start_ExistingImages_PublishesOneSnapshotWithEveryDigestAndTag()
    {
        await using var harness = new IndexerHarness();
        harness.Watcher.Put(IndexerHarness.Image("docker.io/library/a:1", [1], [2]));
        harness.Watcher.Put(IndexerHarness.Image("docker.io/library/b:2", [3], [2]));

        await harness.StartAsync();

        var snapshot = await IndexerHarness.EventuallyAsync(() => harness.Publisher.Events.OfType<NodeSnapshot>().FirstOrDefault());
        Assert.Equal(1, snapshot.PartCount);
        Assert.Equal(3, snapshot.Digests.Count);
        Assert.Equal(["docker.io/library/a:1", "docker.io/library/b:2"], snapshot.Tags.Select(t => t.Reference).Order());
        Assert.Equal("node-a", snapshot.Node);
        Assert.Equal("http://127.0.0.1:5000", snapshot.Address);
    }

    [Fact]
    public async Task ImageCreatedThenDeleted_AdvertisesThenWithdrawsAllButSharedLayers()
    {
        await using var harness = new IndexerHarness();
        harness.Watcher.Put(IndexerHarness.Image("docker.io/library/base:1", [9]));
        await harness.StartAsync();
        await IndexerHarness.EventuallyAsync(() => harness.Publisher.Events.OfType<NodeSnapshot>().FirstOrDefault());

        harness.Watcher.Put(IndexerHarness.Image("docker.io/library/app:1", [1], [9]));
        var advertised = await IndexerHarness.EventuallyAsync(() => harness.Publisher.Events.OfType<ContentAdvertised>().FirstOrDefault());
        harness.Watcher.Delete("docker.io/library/app:1");
        var withdrawn = await IndexerHarness.EventuallyAsync(() => harness.Publisher.Events.OfType<ContentWithdrawn>().FirstOrDefault());

        Assert.Equal(2, advertised.Digests.Count);
        Assert.Equal(new TagBinding("docker.io/library/app:1", Digest.ComputeSha256([1]).ToString()), Assert.Single(advertised.Tags));
        Assert.Equal([Digest.ComputeSha256([1]).ToString()], withdrawn.Digests);
        Assert.Equal(["docker.io/library/app:1"], withdrawn.Tags);
        Assert.True(withdrawn.Stamp > advertised.Stamp);
    }

    [Fact]
    public async Task Reconnect_ContentDeletedWhileAway_NewSnapshotLeavesItOut()
    {
        await using var harness = new IndexerHarness();
        harness.Watcher.Put(IndexerHarness.Image("docker.io/library/a:1", [1]));
        harness.Watcher.Put(IndexerHarness.Image("docker.io/library/b:1", [2]));
        await harness.StartAsync();
        await IndexerHarness.EventuallyAsync(() => harness.Publisher.Events.OfType<NodeSnapshot>().FirstOrDefault());

        harness.Watcher.Disconnect();
        harness.Watcher.Delete("docker.io/library/a:1"); // nobody is watching: this event is lost, as with a dead containerd

        var second = await IndexerHarness.EventuallyAsync(() => harness.Publisher.Events.OfType<NodeSnapshot>().Skip(1).FirstOrDefault());
        Assert.Equal([Digest.ComputeSha256([2]).ToString()], second.Digests);
        Assert.True(second.SnapshotId > 1);
        Assert.Equal(1, harness.Worker.Reconnects);
    }

    [Fact]
    public async Task PublisherDown_EventsAreKeptAndDeliveredInOrderWhenItReturns()
    {
        await using var harness = new IndexerHarness();
        harness.Publisher.Failing = true;
        harness.Watcher.Put(IndexerHarness.Image("docker.io/library/a:1", [1]));
        await harness.StartAsync();
        await IndexerHarness.EventuallyAsync(() => harness.Worker.Connected ? harness : null);
        harness.Watcher.Put(IndexerHarness.Image("docker.io/library/b:1", [2]));
        harness.Watcher.Delete("docker.io/library/a:1");
        await IndexerHarness.EventuallyAsync(() => harness.Outbox.Pending >= 3 ? harness : null);

        harness.Publisher.Failing = false;

        await IndexerHarness.EventuallyAsync(() => harness.Outbox.Pending == 0 ? harness : null);
        var events = harness.Publisher.ContentEvents.ToList();
        Assert.IsType<NodeSnapshot>(events[0]);
        Assert.IsType<ContentAdvertised>(events[1]);
        Assert.IsType<ContentWithdrawn>(events[2]);
        Assert.True(events.Zip(events.Skip(1)).All(p => p.First.Stamp < p.Second.Stamp));
    }

    [Fact]
    public async Task Heartbeat_WhileConnected_IsSentEveryInterval()
    {
        await using var harness = new IndexerHarness();
        await harness.StartAsync();

        var beats = await IndexerHarness.EventuallyAsync(() =>
        {
            var b = harness.Publisher.Events.OfType<NodeHeartbeat>().ToList();
            return b.Count >= 3 ? b : null;
        });
        Assert.All(beats, b => Assert.Equal("http://127.0.0.1:5000", b.Address));
    }

    [Fact]
    public async Task Snapshot_TenThousandDigests_EveryMessageStaysUnder256KiB()
    {
        await using var harness = new IndexerHarness();
        var digests = Enumerable.Range(0, 10_000).Select(i => Digest.ComputeSha256(BitConverter.GetBytes(i))).ToList();
        harness.Watcher.Put(new Spegel.Core.Content.ImageContent("docker.io/library/huge:1", Reference.Parse("docker.io/library/huge:1"), digests[0], digests));
        await harness.StartAsync();

        var parts = await IndexerHarness.EventuallyAsync(() =>
        {
            var p = harness.Publisher.Events.OfType<NodeSnapshot>().ToList();
            return p.Count > 0 && p.Count == p[0].PartCount ? p : null;
        });

        Assert.True(parts.Count > 1);
        Assert.All(parts, p => Assert.True(CloudEvent.Wrap(p, "pubsub", "content").Length < 256 * 1024));
        Assert.Equal(10_000, parts.SelectMany(p => p.Digests).Distinct().Count());
        Assert.Single(parts.Select(p => p.SnapshotId).Distinct());
    }

    [Fact]
    public void CloudEvent_Wrap_CarriesPolymorphicEventAsData()
    {
        var e = new ContentWithdrawn { Node = "n", Address = "http://x", Epoch = 1, Sequence = 2, Timestamp = DateTimeOffset.UnixEpoch, Digests = ["sha256:" + new string('a', 64)] };
        using var doc = JsonDocument.Parse(CloudEvent.Wrap(e, "spegel-pubsub", "content"));
        var root = doc.RootElement;
        Assert.Equal("1.0", root.GetProperty("specversion").GetString());
        Assert.Equal("n/1/2", root.GetProperty("id").GetString());
        Assert.Equal("withdrawn", root.GetProperty("data").GetProperty("kind").GetString());
        var back = JsonSerializer.Deserialize(root.GetProperty("data").GetRawText(), ContentEventJsonContext.Default.ContentEvent);
        Assert.Equal(e.Digests, Assert.IsType<ContentWithdrawn>(back).Digests);
    }
}
