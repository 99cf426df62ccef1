using System.Diagnostics;
using System.Globalization;
using System.Net;
using Spegel.Bench.Infra;
using Spegel.Core.Events;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// E (issue 5, the hedge default): how long peers take to answer with headers, idle and under load, as the mirror
/// sees them; what share of requests a 5, 20 or 50 ms hedge delay would duplicate needlessly; and what a stalled
/// first peer costs end to end with each delay, before and after the registry has learned its own.
/// </summary>
public sealed class HedgeDelayBenchmark : Benchmark
{
    public override string Name => "hedge";

    public override string Id => "E";

    public override string Title => "Hedge delay: peer header latency and the cost of a stalled peer";

    public override string Issue => "5";

    public override bool NeedsBlobImage => true;

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        report.SummarizeTablesOnly = true;
        var s = context.Settings;
        var cluster = context.Cluster;
        var image = cluster.Big!;
        var peer = cluster.Registry1.Url;
        var layer = image.LargestLayer;
        var loadSeconds = s.Quick ? 1 : 8;
        report.Method =
            "Part 1: header latency of requests to node 1's registry exactly as node 2's mirror sends them (`X-Spegel-Mirrored: true`, keep-alive): " +
            "HEAD manifest by tag, GET manifest by digest (headers), HEAD blob by digest, sequentially, " +
            $"idle ({s.HedgeSamples} each) and while {BlobServingBenchmark.Concurrency[^1]} clients GET the {layer.Size / ProcStat.MiB:0.#} MiB blob from node 1 " +
            $"({loadSeconds} s of {context.Client.Description}; as many samples as fit). For each candidate delay, the share of requests slower than it = the share a " +
            "hedge with that delay would duplicate for nothing. The registry learns its delay after 8 samples as p90 × 1.5 clamped to " +
            "[1 ms, `Spegel:MirrorMaxHedgeDelay`]; the column `learned` shows that value for each distribution. " +
            "Part 2: a stalled peer (accepts, reads, never answers) is advertised to the resolver for the same tag and blobs and made the freshest holder, " +
            "so it is tried first; node 2 runs a registry per candidate with `--Spegel:MirrorHedgeDelay=d --Spegel:MirrorMaxHedgeDelay=d " +
            $"--Spegel:MirrorLookupCacheTtl=00:00:00` and is asked HEAD by tag {s.HedgeSamples} times. `cold` = the first 8 requests (the configured delay applies), " +
            "`warm` = the rest (the learned delay applies). `stalled peer tried` = connections the stalled peer accepted per request.";

        using var handler = new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = DecompressionMethods.None };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
        var manifestDigest = image.Manifest.Digest.ToString();
        var kinds = new (string Name, HttpMethod Method, string Url)[]
        {
            ("HEAD manifest by tag", HttpMethod.Head, Cluster.ManifestUrl(peer, image, image.Tag)),
            ("GET manifest by digest", HttpMethod.Get, Cluster.ManifestUrl(peer, image, manifestDigest)),
            ("HEAD blob by digest", HttpMethod.Head, Cluster.BlobUrl(peer, image, layer.Digest)),
        };

        // Warm-up: JIT and connections, not recorded.
        foreach (var kind in kinds)
        {
            for (var i = 0; i < 20; i++)
            {
                await HeaderLatencyAsync(http, kind.Method, kind.Url, ct);
            }
        }

        var part1 = new ReportTable
        {
            Title = "Part 1: peer header latency (ms) and the share of requests each hedge delay would duplicate",
            Headers = ["condition", "request", "n", "p50", "p90", "p99", "max", .. s.HedgeDelaysMs.Select(d => $"> {d} ms"), "learned"],
        };
        var samples = new Dictionary<(string Condition, string Kind), List<double>>();
        foreach (var kind in kinds)
        {
            var list = samples[("idle", kind.Name)] = [];
            for (var i = 0; i < s.HedgeSamples; i++)
            {
                list.Add(await HeaderLatencyAsync(http, kind.Method, kind.Url, ct));
            }
        }

        var loaded = $"{BlobServingBenchmark.Concurrency[^1]} clients on node 1";
        foreach (var kind in kinds)
        {
            samples[(loaded, kind.Name)] = [];
        }

        var load = context.Client.RunAsync(Cluster.BlobUrl(peer, image, layer.Digest), BlobServingBenchmark.Concurrency[^1], TimeSpan.FromSeconds(loadSeconds), ct: ct);
        await Task.Delay(200, ct);
        var n = 0;
        while (!load.IsCompleted && samples[(loaded, kinds[^1].Name)].Count < s.HedgeSamples)
        {
            var kind = kinds[n++ % kinds.Length];
            var ms = await HeaderLatencyAsync(http, kind.Method, kind.Url, ct);
            if (!load.IsCompleted)
            {
                samples[(loaded, kind.Name)].Add(ms);
            }
        }

        await load;
        foreach (var ((condition, kind), list) in samples)
        {
            var p90 = Stats.Percentile(list, 90);
            var learned = Math.Clamp(p90 * 1.5, 1, 300);
            part1.Rows.Add(
            [
                condition, kind, list.Count.ToString(CultureInfo.InvariantCulture), F(Stats.Percentile(list, 50)), F(p90), F(Stats.Percentile(list, 99)), F(list.Count == 0 ? double.NaN : list.Max()),
                .. s.HedgeDelaysMs.Select(d => F(Stats.PercentAbove(list, d)) + " %"), F(learned) + " ms",
            ]);
            report.Measure($"peer header latency, {condition}, {kind}, p99", "ms").Rounds.Add(Stats.Percentile(list, 99));
        }

        report.Tables.Add(part1);

        // Part 2: a stalled first peer.
        var tags = new[] { new TagBinding(image.Reference, manifestDigest) };
        var digests = image.Blobs.Select(b => b.Digest.ToString()).ToList();
        await using var stalled = await StalledPeer.StartAsync("stalled", cluster.Resolver.Url, tags, digests, ct);
        var part2 = new ReportTable
        {
            Title = "Part 2: HEAD by tag through node 2 with a stalled peer listed first (ms)",
            Headers = ["hedge delay", "cold (first 8): median", "cold: max", "warm: p50", "warm: p90", "warm: p99", "stalled peer tried"],
        };
        foreach (var delay in s.HedgeDelaysMs)
        {
            var d = TimeSpan.FromMilliseconds(delay).ToString("c", CultureInfo.InvariantCulture);
            await using var registry = await cluster.StartRegistryAsync(
                $"registry-n2-hedge-{delay}ms",
                "n2",
                cluster.Node2,
                [$"--Spegel:MirrorHedgeDelay={d}", $"--Spegel:MirrorMaxHedgeDelay={d}", "--Spegel:MirrorLookupCacheTtl=00:00:00"],
                ct: ct);

            // Freshest holder = first in the resolver's answer (node 1 was last confirmed at its pull, in an older bucket).
            await Task.Delay(TimeSpan.FromSeconds(s.Quick ? 0 : 1), ct);
            await stalled.AdvertiseAsync(tags, digests, ct);
            using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };
            var before = stalled.Accepted;
            var all = new List<double>();
            var url = Cluster.ManifestUrl(registry.Url, image, image.Tag);
            for (var i = 0; i < Math.Max(s.HedgeSamples, 12); i++)
            {
                var ms = await HeaderLatencyAsync(client, HttpMethod.Head, url, ct, mirrored: false);
                all.Add(ms);
            }

            var tried = (stalled.Accepted - before) / (double)all.Count;
            var cold = all.Take(8).ToList();
            var warm = all.Skip(8).ToList();
            part2.Rows.Add(
            [
                $"{delay} ms", F(Stats.Median(cold)), F(cold.Max()), F(Stats.Percentile(warm, 50)), F(Stats.Percentile(warm, 90)), F(Stats.Percentile(warm, 99)),
                F(100 * tried) + " %",
            ]);
            report.Measure($"stalled first peer, hedge {delay} ms: cold median", "ms").Rounds.Add(Stats.Median(cold));
            report.Measure($"stalled first peer, hedge {delay} ms: warm p99", "ms").Rounds.Add(Stats.Percentile(warm, 99));
            Log.Info(string.Create(CultureInfo.InvariantCulture, $"  E hedge {delay} ms: cold median {Stats.Median(cold):0.0} ms, warm p50 {Stats.Percentile(warm, 50):0.00} p99 {Stats.Percentile(warm, 99):0.00} ms, stalled tried {100 * tried:0} %"));
        }

        report.Tables.Add(part2);
    }

    private static string F(double v) => Report.Format(v);

    private static async Task<double> HeaderLatencyAsync(HttpClient http, HttpMethod method, string url, CancellationToken ct, bool mirrored = true)
    {
        using var request = new HttpRequestMessage(method, url);
        request.Headers.TryAddWithoutValidation("Accept", string.Join(", ", HeadLatencyBenchmark.ManifestAccept));
        if (mirrored)
        {
            request.Headers.TryAddWithoutValidation("X-Spegel-Mirrored", "true");
        }

        var start = Stopwatch.GetTimestamp();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        var ms = ElapsedMs(start);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"{method} {url} answered {(int)response.StatusCode}");
        }

        await response.Content.CopyToAsync(Stream.Null, ct);
        return ms;
    }
}
