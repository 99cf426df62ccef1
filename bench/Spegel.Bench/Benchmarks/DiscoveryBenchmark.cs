using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using Spegel.Bench.Infra;
using Spegel.Core.Routing;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// H (issue 9, item 4): how long after a pull finishes on node 1 the resolver can name node 1 for what was pulled —
/// containerd's event → node 1's indexer → the resolver — over many pulls of distinct small images, p50 and p99.
/// </summary>
public sealed class DiscoveryBenchmark : Benchmark
{
    private const long LayerSize = 64 * 1024;

    public override string Name => "discovery";

    public override string Id => "H";

    public override string Title => "Discovery: pull finished on node 1 → answerable by the resolver";

    public override string Issue => "9";

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        var s = context.Settings;
        var cluster = context.Cluster;
        var pulls = s.DiscoveryPulls;

        // Distinct images, so every pull brings digests the resolver has never seen (a repeated digest would be answered at once).
        Log.Info($"  H: building and pushing {pulls} images of one {LayerSize / 1024} KiB layer");
        var images = new BenchImage[pulls];
        await Parallel.ForEachAsync(Enumerable.Range(0, pulls), new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct }, async (i, token) =>
            images[i] = await BenchImages.BuildAsync(cluster.Upstream, "bench/discovery", string.Create(CultureInfo.InvariantCulture, $"p{i:D4}"), [LayerSize], token));

        report.Method =
            $"{pulls} distinct images (one {LayerSize / 1024} KiB layer each, pushed to the upstream first) are pulled one after the other on node 1 " +
            "with `ctr images pull` (fetch and unpack, straight from the upstream). When ctr exits, the harness polls the resolver's `/v1/peers` " +
            "every 2 ms for the image's manifest digest and its layer digest (both requests at once) until both list node 1; the time from ctr's exit " +
            "to that answer is one sample. The path measured is containerd's image event → node 1's indexer (its containerd event subscription) → " +
            "the resolver's `/v1/events` → the in-memory map (Standalone; through Dapr pub/sub in a cluster). Samples are pooled: one 'round' per pull.";

        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };
        var latencies = new List<double>();
        var timeouts = 0;
        for (var i = 0; i < pulls; i++)
        {
            var image = images[i];
            var pull = await cluster.Node1.PullAsync(image.Reference, unpack: true, timeout: TimeSpan.FromMinutes(1), ct: ct);
            var finished = Stopwatch.GetTimestamp();
            pull.EnsureSuccess();
            var keys = new[] { image.Manifest.Digest.ToString(), image.Layers[0].Digest.ToString() };
            var known = false;
            while (Stopwatch.GetElapsedTime(finished) < TimeSpan.FromSeconds(10))
            {
                var answers = await Task.WhenAll(keys.Select(k => ListsNode1Async(http, cluster.Resolver.Url, k, ct)));
                if (answers.All(a => a))
                {
                    known = true;
                    break;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(2), ct);
            }

            var ms = Stopwatch.GetElapsedTime(finished).TotalMilliseconds;
            if (!known)
            {
                timeouts++;
                Log.Info($"  H pull {i}: the resolver did not list n1 for {image.Reference} within 10 s");
                continue;
            }

            latencies.Add(ms);
            if (i % 20 == 0 || s.Quick)
            {
                Log.Info(string.Create(CultureInfo.InvariantCulture, $"  H pull {i}: answerable {ms:0.0} ms after ctr exited (pull took {pull.Elapsed.TotalMilliseconds:0} ms)"));
            }
        }

        if (latencies.Count == 0)
        {
            throw new InvalidOperationException($"none of {pulls} pulls became answerable at the resolver within 10 s");
        }

        report.Measure("pull finished → answerable, p50", "ms").Rounds.Add(Stats.Percentile(latencies, 50));
        report.Measure("pull finished → answerable, p99", "ms", Target.AtMost(1000)).Rounds.Add(Stats.Percentile(latencies, 99));
        report.Measure("pull finished → answerable, max", "ms").Rounds.Add(latencies.Max());
        report.Measure("pulls not answerable within 10 s", "pulls", Target.AtMost(0)).Rounds.Add(timeouts);
        var table = new ReportTable { Title = "Discovery latency over every pull (ms)", Headers = ["pulls", "answered", "p50", "p90", "p99", "max", "min"] };
        table.Rows.Add(
        [
            pulls.ToString(CultureInfo.InvariantCulture), latencies.Count.ToString(CultureInfo.InvariantCulture),
            Report.Format(Stats.Percentile(latencies, 50)), Report.Format(Stats.Percentile(latencies, 90)), Report.Format(Stats.Percentile(latencies, 99)),
            Report.Format(latencies.Max()), Report.Format(latencies.Min()),
        ]);
        report.Tables.Add(table);
        report.Notes.Add($"Every sample, in pull order (ms): {string.Join(", ", latencies.Select(Report.Format))}.");
        report.Notes.Add("The 2 ms poll interval and the poll's own HTTP round trip are part of every sample: a sample under ~3 ms means the resolver already knew when ctr exited.");

        // Node 1 keeps the images: they are small, and removing them would send withdrawals while later benchmarks run.
    }

    private static async Task<bool> ListsNode1Async(HttpClient http, string resolverUrl, string key, CancellationToken ct)
    {
        var answer = await http.GetFromJsonAsync(new Uri(resolverUrl + PeersRoute.For(key, null)), PeersJsonContext.Default.PeersResponse, ct);
        return answer is not null && answer.Peers.Any(p => p.Node == "n1");
    }
}
