using System.Diagnostics;
using System.Globalization;
using Spegel.Core;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.EndToEnd.Tests.Support;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.EndToEnd.Tests;

/// <summary>Issue 5: a dead, lying or stalled peer never costs a pull.</summary>
public sealed class PeerFailureTests(ITestOutputHelper output)
{
    private const long UnderWay = 24L * 1024 * 1024;

    /// <summary>
    /// <paramref name="streamed"/>: the puller's spool is off, so the layer streams to containerd as it arrives;
    /// otherwise (the default) node 3's registry holds it in its spool until it is whole and verified, and the
    /// resume happens there, before containerd has a byte of the layer.
    /// </summary>
    [Theory]
    [InlineData(ClusterTransport.Standalone, false)]
    [InlineData(ClusterTransport.Dapr, false)]
    [InlineData(ClusterTransport.Standalone, true)]
    public async Task Pull_ServingPeerKilledMidLargeLayer_ResumesOnOtherPeerAndSucceeds(ClusterTransport transport, bool streamed)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var building = new TestImages(upstream).LargeLayerAsync();
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions
        {
            Nodes = 3,
            Transport = transport,
            RegistryArguments = streamed ? ["--Spegel:MirrorSpoolPath="] : [],
        });
        var image = await building;
        var layer = image.NativeBlobs.MaxBy(b => b.Size)!;
        Assert.True(layer.Size >= 100L * 1024 * 1024);
        var holders = new[] { cluster.Node(1), cluster.Node(2) };
        var puller = cluster.Node(3);

        foreach (var pull in await Task.WhenAll(holders.Select(n => n.PullFromUpstreamAsync(image.Reference))))
        {
            pull.EnsureSuccess();
        }

        foreach (var holder in holders)
        {
            await Discovery.WaitAsync(cluster.ResolverApi, holder.Name, Content.Keys(image), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
        }

        await upstream.StopAsync();
        var readBefore = holders.ToDictionary(h => h.Name, h => ProcIo.ReadBytes(h.Registry.Pid) ?? 0);

        // Under way, streamed: node 3's containerd is writing the layer's ingest and one holder has read a good part
        // of the layer file to send it. Spooled: containerd gets nothing before the layer is whole, and node 3's
        // registry takes the holder's bytes as fast as they come (the whole layer in a few hundred ms here), so the
        // first MiB the holder reads is the signal (the small blobs are far below it). That holder (whichever the
        // resolver put first, or the hedge picked) is killed.
        var threshold = streamed ? UnderWay : 1L << 20;
        var clock = Stopwatch.StartNew();
        var pulling = puller.PullAsync(image.Reference, TimeSpan.FromSeconds(120));
        ClusterNode? killed = null;
        long ingestAtKill = 0, readAtKill = 0;
        while (!pulling.IsCompleted && killed is null)
        {
            var ingest = streamed ? Content.IngestBytes(puller.Containerd) : 0;
            foreach (var holder in holders)
            {
                var read = (ProcIo.ReadBytes(holder.Registry.Pid) ?? 0) - readBefore[holder.Name];
                if ((ingest > 0 || !streamed) && read >= threshold)
                {
                    holder.Registry.Signal(9);
                    (killed, ingestAtKill, readAtKill) = (holder, ingest, read);
                    break;
                }
            }

            await Task.Delay(1);
        }

        var result = await pulling;
        Assert.True(killed is not null, $"the {layer.Size >> 20} MiB layer arrived in {clock.Elapsed.TotalMilliseconds:0} ms before a peer could be killed mid-transfer");
        await killed.Registry.KillAsync();
        Assert.True(result.Succeeded, $"{result}\n{cluster.Describe()}");
        output.WriteLine($"{(streamed ? "streamed" : "spooled")}: killed {killed.Name}'s registry after it read {readAtKill >> 20} MiB, with {ingestAtKill >> 20} MiB of {layer.Size >> 20} MiB in node 3's ingest; pull took {result.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(readAtKill < layer.Size, $"the kill came after {killed.Name} had read {readAtKill} bytes, the whole {layer.Size}-byte layer: too late to be mid-transfer");

        await Content.AssertHoldsAsync(puller.Containerd, image.NativeBlobs, puller.Name);
        var resume = puller.Registry.Lines.FirstOrDefault(l => l.Contains("peer failed mid-transfer, resuming", StringComparison.Ordinal));
        Assert.True(resume is not null, $"node 3's registry never resumed the transfer\n{cluster.Describe()}");
        output.WriteLine(resume);
        Assert.Contains($"\"peer\":\"{killed.Name}\"", resume, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task Pull_StalledPeerListedFirst_SucceedsWithLittleAddedTime(ClusterTransport transport)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var building = new TestImages(upstream).SmallImagesAsync();

        // A tiny freshness bucket: the latest advertiser (the stalled peer) is answered first, deterministically.
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 3, FreshnessBucket = TimeSpan.FromMilliseconds(1), NodeTimeout = TimeSpan.FromMinutes(5), Transport = transport });
        await using var stalled = new StalledPeer();
        var images = await building;
        var resolver = cluster.ResolverApi;
        var (node1, node2, node3) = (cluster.Node(1), cluster.Node(2), cluster.Node(3));
        foreach (var image in images)
        {
            (await node1.PullFromUpstreamAsync(image.Reference)).EnsureSuccess();
        }

        await Discovery.WaitAsync(resolver, node1.Name, images.SelectMany(Content.Keys), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
        await upstream.StopAsync();

        // Image by image, interleaved so that both sides see the same machine load: node 3 pulls through the mirror
        // with honest peers only; then the stalled peer advertises the image (freshest, so first in every answer)
        // and node 2 makes the same pull.
        var baseline = new List<double>();
        var stalledRun = new List<double>();
        foreach (var image in images)
        {
            var pull = await node3.PullAsync(image.Reference);
            Assert.True(pull.Succeeded, $"{pull}\n{cluster.Describe()}");
            baseline.Add(pull.Elapsed.TotalMilliseconds);
            await Discovery.WaitAsync(resolver, node3.Name, Content.Keys(image), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);

            await FakeAdvertiser.AdvertiseAsync(resolver, "stalled", stalled.Url, image);
            foreach (var key in Content.Keys(image))
            {
                Assert.Equal("stalled", (await resolver.NodesAsync(key))[0]);
            }

            pull = await node2.PullAsync(image.Reference);
            Assert.True(pull.Succeeded, $"{pull}\n{cluster.Describe()}");
            stalledRun.Add(pull.Elapsed.TotalMilliseconds);
            await Content.AssertHoldsAsync(node2.Containerd, image.NativeBlobs, node2.Name);
        }

        for (var i = 0; i < images.Count; i++)
        {
            output.WriteLine(Invariant($"{images[i].Repository}: {baseline[i]:0} ms without, {stalledRun[i]:0} ms with the stalled peer first ({stalledRun[i] - baseline[i]:+0;-0} ms)"));
        }

        output.WriteLine(Invariant($"total: {baseline.Sum():0} ms without, {stalledRun.Sum():0} ms with (ratio {stalledRun.Sum() / baseline.Sum():0.00}); stalled peer accepted {stalled.Accepted} connections"));

        // The same comparison without ctr and unpacking in it: the registries' own latencies for what they mirrored.
        var without = RequestLine.Parse(node3.Registry.Lines).Where(r => r.Source.StartsWith("node-", StringComparison.Ordinal)).Select(r => r.LatencyMs).ToList();
        var with = RequestLine.Parse(node2.Registry.Lines).Where(r => r.Source.StartsWith("node-", StringComparison.Ordinal)).Select(r => r.LatencyMs).ToList();
        output.WriteLine(Invariant($"mirrored requests: without p50 {Stats.Percentile(without, 50):0.0} ms / max {without.Max():0.0} ms ({without.Count}), with the stalled peer first p50 {Stats.Percentile(with, 50):0.0} ms / max {with.Max():0.0} ms ({with.Count})"));
        // Tried first at least once; after losing a hedge it is tried last for a while, so later pulls skip it.
        Assert.True(stalled.Accepted > 0, "the stalled peer was never tried");
        for (var i = 0; i < images.Count; i++)
        {
            Assert.True(stalledRun[i] - baseline[i] < 2000, Invariant($"{images[i].Repository}: the stalled peer added {stalledRun[i] - baseline[i]:0} ms"));
        }
    }

    /// <summary>
    /// The liar answers first and fast (warm, freshest advertiser, tiny freshness bucket), so the pulling node's
    /// registry streams from it, finds the digest wrong at the end and aborts. Two shapes of lie, each met by its own
    /// puller (each registry penalises the liar on its own): node 2 pulls an image whose config is corrupted too (a
    /// blob small enough to be held back whole: the connection is reset before any header), node 3 one whose layer
    /// only is (headers and all but the last chunk already sent). What real containerd 1.6 does with each is written
    /// to the output attempt by attempt. Asserted: wrong bytes are never committed, the lies were caught, and the
    /// pull succeeds within the allowed attempts. With the upstream down one retry is allowed — made, as kubelet's
    /// back-off would, once containerd has dropped the failed attempt's ingest — and must come from the honest peer.
    /// With the upstream up the first pull must succeed: blobs under Spegel:MirrorVerifyBeforeSendBytes are verified
    /// before the first byte, so the lie becomes a clean 404 (or the next peer) and containerd goes on.
    /// <paramref name="spoolEverything"/>: every blob, whatever its size, is verified in the spool before a byte is
    /// sent (as blobs above 32 MiB are by default), the hedge is held back so the liar is asked alone, and the next
    /// peer is tried within the same request: with the upstream down, the first pull must succeed.
    /// </summary>
    [Theory]
    [InlineData(false, 2, ClusterTransport.Standalone, false)]
    [InlineData(true, 1, ClusterTransport.Standalone, false)]
    [InlineData(true, 1, ClusterTransport.Dapr, false)]
    [InlineData(false, 1, ClusterTransport.Standalone, true)]
    public async Task Pull_LyingPeerListedFirst_WrongBytesNeverCommittedAndPullSucceedsFromHonestSource(bool upstreamUp, int allowedAttempts, ClusterTransport transport, bool spoolEverything)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var testImages = new TestImages(upstream);
        var building = Task.WhenAll(testImages.MultiLayerAsync(), testImages.SingleLayerAsync());

        // One peer per fresh request: the liar, first in every answer, is the one asked, and no hedge race under
        // load decides whether the lie gets exercised. The honest peer is still next once the liar is penalised.
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions
        {
            Nodes = 3,
            FreshnessBucket = TimeSpan.FromMilliseconds(1),
            NodeTimeout = TimeSpan.FromMinutes(5),
            RegistryArguments = spoolEverything
                ? ["--Spegel:MirrorVerifyBeforeSendBytes=0", "--Spegel:MirrorHedgeDelay=00:00:04", "--Spegel:MirrorMaxHedgeDelay=00:00:04"]
                : ["--Spegel:MirrorResolveRetries=1"],
            Transport = transport,
        });
        var built = await building;
        var (everything, layersOnly) = (built[0], built[1]);
        var node1 = cluster.Node(1);
        foreach (var image in built)
        {
            (await node1.PullFromUpstreamAsync(image.Reference)).EnsureSuccess();
        }

        await Discovery.WaitAsync(cluster.ResolverApi, node1.Name, built.SelectMany(Content.Keys), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);

        await using var liar = await LyingRegistry.StartAsync(cluster, node1, [(everything, false), (layersOnly, true)]);
        foreach (var image in built)
        {
            foreach (var blob in image.NativeBlobs)
            {
                // Warms both peers up, and proves the liar lies: same length, wrong bytes for what it corrupted.
                Assert.Equal(blob.Digest, await LyingRegistry.FetchAsync(node1.RegistryUrl, image, blob, cluster.PeerToken));
                Assert.Equal(!liar.Corrupted.Contains(blob.Digest), await LyingRegistry.FetchAsync(liar.Url, image, blob) == blob.Digest);
            }
        }

        await FakeAdvertiser.AdvertiseAsync(cluster.ResolverApi, "liar", liar.Url, [.. built]);
        foreach (var key in built.SelectMany(Content.Keys))
        {
            Assert.Equal(["liar", "node-1"], await cluster.ResolverApi.NodesAsync(key));
        }

        if (!upstreamUp)
        {
            await upstream.StopAsync();
        }

        var reports = await Task.WhenAll(
            PullPastLiarAsync(cluster, cluster.Node(2), everything, "config and layers corrupted", allowedAttempts),
            PullPastLiarAsync(cluster, cluster.Node(3), layersOnly, "layer corrupted", allowedAttempts));
        foreach (var report in reports)
        {
            output.WriteLine(report);
        }
    }

    private static async Task<string> PullPastLiarAsync(LocalCluster cluster, ClusterNode node, TestImage image, string lie, int allowedAttempts)
    {
        var report = new System.Text.StringBuilder($"{node.Name} pulls {image.Repository} ({lie}, upstream {(cluster.Upstream.IsRunning ? "up" : "down")}):\n");
        var attempts = new List<CommandResult>();
        while (attempts.Count < allowedAttempts && (attempts.Count == 0 || !attempts[^1].Succeeded))
        {
            if (attempts.Count > 0)
            {
                // kubelet retries after a back-off of 10 s and more; by then containerd's GC has removed the failed
                // attempt's ingest (it goes with ctr's lease). Retrying into a partial ingest resumes it with a Range
                // request and keeps its wrong prefix: containerd's commit then fails on the digest.
                await Poll.WaitUntilAsync(async ct => (await ActiveIngestsAsync(node, ct)).Count == 0, TimeSpan.FromSeconds(10), "containerd to drop the failed attempt's ingest");
            }

            var pull = await node.PullAsync(image.Reference);
            attempts.Add(pull);
            report.AppendLine(Invariant($"  ctr pull attempt {attempts.Count}: exit {pull.ExitCode} in {pull.Elapsed.TotalMilliseconds:0} ms; {LastLine(pull.StdErr)}"));
            report.AppendLine($"    ingests right after it: [{string.Join("; ", await ActiveIngestsAsync(node, default))}]");

            // Whatever containerd committed is right: a blob file exists only once its digest checked out.
            foreach (var blob in image.NativeBlobs.Where(b => File.Exists(node.Containerd.BlobPath(b.Digest))))
            {
                Assert.Equal(blob.Digest, await Content.Sha256OfFileAsync(node.Containerd.BlobPath(blob.Digest)));
            }
        }

        var mismatches = node.Registry.Lines.Where(l => l.Contains("peer sent bytes not matching their digest", StringComparison.Ordinal)).ToList();
        report.Append(CultureInfo.InvariantCulture, $"  {node.Name}'s registry caught {mismatches.Count} lies");
        Assert.True(mismatches.Count > 0, $"{node.Name} never met the lie: {report}\n{cluster.Describe()}");
        Assert.All(mismatches, l => Assert.Contains("\"peer\":\"liar\"", l, StringComparison.Ordinal));
        Assert.True(attempts[^1].Succeeded, $"{report}\n{attempts[^1]}\n{cluster.Describe()}");
        await Content.AssertHoldsAsync(node.Containerd, image.NativeBlobs, node.Name);
        return report.ToString();
    }

    private static async Task<IReadOnlyList<string>> ActiveIngestsAsync(ClusterNode node, CancellationToken ct)
    {
        var active = (await node.Containerd.CtrAsync(["content", "active"], ct: ct)).EnsureSuccess();
        return active.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Skip(1)
            .Select(l => string.Join(' ', l.Split('\t', StringSplitOptions.RemoveEmptyEntries).Take(2)))
            .ToList();
    }

    private static string LastLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? string.Empty;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
