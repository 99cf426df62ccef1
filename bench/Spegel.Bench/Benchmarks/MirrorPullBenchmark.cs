using System.Globalization;
using Spegel.Bench.Infra;
using Spegel.TestRig;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// C (issue 5): a whole <c>ctr images pull</c> (fetch and unpack) of a multi-layer image on a cold node 2, through its
/// own registry from node 1, against the same pull from an upstream throttled to a shared 50 MB/s.
/// </summary>
public sealed class MirrorPullBenchmark : Benchmark
{
    public override string Name => "pull";

    public override string Id => "C";

    public override string Title => "Whole pull on a cold node";

    public override string Issue => "5";

    public override bool NeedsPullImage => true;

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        var s = context.Settings;
        var cluster = context.Cluster;
        var image = cluster.Pull!;
        var node = cluster.Node2;
        var perRequest = s.UpstreamBytesPerSecond / s.PullLayers;
        await using var throttle = await NginxServer.StartThrottledProxyAsync(cluster.Upstream.Url, perRequest, ct);

        // What a cluster would run instead of peers: one docker-registry pull-through cache of the same throttled upstream.
        await using var cache = await PullThroughCache.StartAsync(throttle.Url, ct);

        var hostsRoot = RigDirectory.Create("hosts");
        try
        {
            // The same image reference both ways; only the hosts.toml differs. The upstream is the throttled proxy in both.
            // containerd 1.6 rejects a hosts.toml without any [host."…"] table ("invalid `host` tree") and silently
            // falls back to the registry itself, so the direct side lists the throttled proxy as its only host too.
            var direct = Path.Combine(hostsRoot, "direct");
            var mirrored = Path.Combine(hostsRoot, "mirror");
            HostsDir.Write(direct, image.Registry, throttle.Url, throttle.Url);
            HostsDir.Write(mirrored, image.Registry, throttle.Url, cluster.Registry2.Url);
            var noHop = Path.Combine(hostsRoot, "nohop");
            HostsDir.Write(noHop, image.Registry, throttle.Url, cluster.Registry1.Url);
            var pullThrough = Path.Combine(hostsRoot, "pullthrough");
            HostsDir.Write(pullThrough, image.Registry, throttle.Url, cache.Url);

            // Warm the cache once (it stores what it forwards), so every measured pull finds the blobs in it, as node 1 holds them for the mirror.
            await CleanAsync(node, image, ct);
            (await node.PullAsync(image.Reference, hostsDir: pullThrough, unpack: false, timeout: TimeSpan.FromMinutes(3), ct: ct)).EnsureSuccess();
            var (warmBytes, _) = throttle.ReadAndResetAccessLog();
            Log.Info(string.Create(CultureInfo.InvariantCulture, $"  C: pull-through cache warmed ({warmBytes / ProcStat.MiB:0.0} MiB from the throttled upstream)"));
            report.Method =
                $"`ctr images pull --plain-http --hosts-dir DIR {image.Reference}` (fetch and unpack into the {node.Snapshotter} snapshotter, as kubelet pulls) of an image with " +
                $"{image.Layers.Count} layers × {image.Layers[0].Size / ProcStat.MiB:0.##} MiB ({image.TotalSize / ProcStat.MiB:0.##} MiB in all) on node 2, whose containerd is emptied " +
                "(`ctr images rm --sync`, then `ctr content rm` of every blob, checked empty) before every pull. " +
                $"**direct**: hosts.toml has the throttled upstream as its only host (and as `server`): nginx in front of docker-registry with `limit_rate {perRequest}` bytes/s per request " +
                $"(`limit_rate_after 0`, proxy buffering on). containerd fetches the {image.Layers.Count} layers in parallel (ctr's `--max-concurrent-downloads` is 0 = unlimited), " +
                $"so the layers share {s.UpstreamBytesPerSecond / 1e6:0.#} MB/s in all, like one 50 MB/s link; the effective rate is reported below. " +
                "**mirror**: hosts.toml lists node 2's registry first (pull, resolve), then the same throttled upstream as `server`; node 1 holds the image " +
                "(pulled from upstream, advertised by its indexer). The bytes the throttled upstream sent during each mirrored pull are counted from its access log. " +
                "**pull-through cache**: hosts.toml lists a docker-registry configured as a pull-through cache (`proxy: remoteurl:` the throttled upstream), " +
                "warmed by one pull before the rounds (it stores what it forwards), as the mirror: what a cluster runs instead of peer mirroring; it still checks the tag with the upstream on every pull. " +
                "**diagnostic: no hop**: node 1's registry itself as node 2's mirror (the bytes without node 2's registry in between), to show what containerd, the disk and node 1 cost alone. " +
                "The same pulls are also timed as `ctr content fetch` (same hosts, no unpack), to separate the transfer from the unpack. " +
                "Rounds alternate direct and mirror in rotating order; ratio = mirror time / direct time per round.";

            // Diagnostic third side: node 1's registry itself as node 2's mirror, i.e. the same bytes without node 2's
            // registry in between: what containerd, the disk and node 1 cost on their own.
            var sides = new List<(string Name, string HostsDir)>
            {
                ("direct, throttled upstream", direct), ("mirror (node 2 from node 1)", mirrored), ("diagnostic: node 1's registry as the mirror, no hop", noHop),
                ("docker-registry pull-through cache (warm)", pullThrough),
            };

            // The headline is the whole pull (fetch + unpack); a fetch alone (`ctr content fetch`, same hosts) shows the
            // transfer part, since unpacking costs the same disk and CPU on both sides.
            var modes = new List<(string Name, bool Unpack)> { ("pull", true), ("fetch only", false) };
            foreach (var round in Rounds(s))
            {
                foreach (var mode in modes)
                {
                    foreach (var side in Rotate(sides, round))
                    {
                        await CleanAsync(node, image, ct);
                        throttle.ReadAndResetAccessLog();
                        var pull = await node.PullAsync(image.Reference, hostsDir: side.HostsDir, unpack: mode.Unpack, timeout: TimeSpan.FromMinutes(3), ct: ct);
                        pull.EnsureSuccess();
                        var (upstreamBytes, lines) = throttle.ReadAndResetAccessLog();
                        Log.Info(string.Create(CultureInfo.InvariantCulture, $"  C round {round}: {side.Name,-30} {mode.Name,-10} {pull.Elapsed.TotalSeconds:0.000} s, upstream sent {upstreamBytes / ProcStat.MiB:0.0} MiB in {lines.Count} requests"));
                        if (round < 0)
                        {
                            continue;
                        }

                        var m = report.Measure($"{side.Name}: {mode.Name} time", "s");
                        m.Rounds.Add(pull.Elapsed.TotalSeconds);
                        m.AddExtra("MiB sent by the throttled upstream", upstreamBytes / ProcStat.MiB);
                        m.AddExtra("requests to the throttled upstream", lines.Count);
                        if (side.HostsDir == direct)
                        {
                            m.AddExtra("effective upstream rate, MB/s", image.TotalSize / 1e6 / pull.Elapsed.TotalSeconds);
                        }
                    }
                }
            }

            await CleanAsync(node, image, ct);
            foreach (var mode in modes)
            {
                report.Ratio(
                    $"mirror / direct, {mode.Name} time",
                    report.Measurements.First(m => m.Name == $"{sides[1].Name}: {mode.Name} time"),
                    report.Measurements.First(m => m.Name == $"{sides[0].Name}: {mode.Name} time"),
                    mode.Unpack ? Target.AtMost(0.3) : null);
                report.Ratio(
                    $"mirror / docker-registry pull-through cache, {mode.Name} time",
                    report.Measurements.First(m => m.Name == $"{sides[1].Name}: {mode.Name} time"),
                    report.Measurements.First(m => m.Name == $"{sides[3].Name}: {mode.Name} time"));
                report.Ratio(
                    $"diagnostic: no hop / direct, {mode.Name} time",
                    report.Measurements.First(m => m.Name == $"{sides[2].Name}: {mode.Name} time"),
                    report.Measurements.First(m => m.Name == $"{sides[0].Name}: {mode.Name} time"));
            }
        }
        finally
        {
            await RigDirectory.RemoveAsync(hostsRoot);
        }
    }

    /// <summary>Node 2 back to cold: no image record, no blob of the image left in its content store.</summary>
    private static async Task CleanAsync(ContainerdInstance node, BenchImage image, CancellationToken ct)
    {
        await node.RemoveImageAsync(image.Reference, ct);
        var digests = image.Blobs.Select(b => b.Digest.ToString()).ToList();
        await node.CtrAsync(["content", "rm", .. digests], ct: ct);
        var left = (await node.CtrAsync(["content", "ls", "-q"], ct: ct)).EnsureSuccess().StdOut;
        var remaining = digests.Where(d => left.Contains(d, StringComparison.Ordinal)).ToList();
        if (remaining.Count > 0)
        {
            throw new InvalidOperationException($"node 2 still holds {string.Join(", ", remaining)} after cleaning");
        }
    }
}
