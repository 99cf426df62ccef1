using System.Globalization;
using Spegel.Bench.Infra;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// B (issue 5): the blob through node 2's registry, which misses locally, asks the resolver and fetches it from
/// node 1's registry (verified in the spool before sending, and, for comparison, streamed with the spool off),
/// against the same GET straight from node 1's registry.
/// </summary>
public sealed class PeerPathBenchmark : Benchmark
{
    public override string Name => "peer";

    public override string Id => "B";

    public override string Title => "Peer path (proxied) throughput";

    public override string Issue => "5";

    public override bool NeedsBlobImage => true;

    /// <summary>Whole GETs per client: about a second of direct transfer per measurement, at least one.</summary>
    private static int RequestsPerClient(int clients, BenchSettings s) => clients == 1 ? Math.Max(1, (int)Math.Round(s.LoadDuration.TotalSeconds)) : 1;

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        var s = context.Settings;
        var cluster = context.Cluster;
        var image = cluster.Big!;
        var layer = image.LargestLayer;

        // A second registry on node 2 with the spool turned off: the streaming path, for comparison in the same run.
        await using var streaming = await cluster.StartRegistryAsync("registry-n2-streaming", "n2s", cluster.Node2, ["--Spegel:MirrorSpoolPath="], ct: ct);
        var sides = new List<(string Name, string Url)>
        {
            ("proxied (node 2 from node 1)", Cluster.BlobUrl(cluster.Registry2.Url, image, layer.Digest)),
            ("proxied, streamed (spool off)", Cluster.BlobUrl(streaming.Url, image, layer.Digest)),
            ("direct (node 1)", Cluster.BlobUrl(cluster.Registry1.Url, image, layer.Digest)),
        };
        foreach (var side in sides)
        {
            await VerifyBlobAsync(side.Url, layer.Digest, layer.Size, ct);
        }

        report.Method =
            $"GET of the {layer.Size / ProcStat.MiB:0.##} MiB blob, whole, {RequestsPerClient(1, s)} times by 1 client and {RequestsPerClient(8, s)} time(s) each by 8 concurrent clients " +
            "(an in-process .NET client, the same for every side; fixed work rather than wrk's fixed window, which cannot measure a server that sends " +
            "nothing until it holds the whole blob: a 3 s window saw no byte of 8 concurrent spooled 256 MiB transfers). " +
            "**proxied**: node 2's registry (its containerd empty) misses locally, looks the digest up in the resolver (Standalone, in memory; node 1 advertised by " +
            "its real indexer after a `ctr` pull), fetches the blob from node 1's registry with `X-Spegel-Mirrored: true` into its spool, hashing it, and sends it " +
            "only once the digest matched (the default for a whole blob above 32 MiB). **proxied, streamed**: a second registry on node 2 with " +
            "`--Spegel:MirrorSpoolPath=` streams it instead, hashing it as it flows and holding the last chunk back until the digest matches. " +
            "**direct**: the same GET at node 1's registry. " +
            "All sides verified byte-exact first; rounds interleaved; ratios per round. All processes (client, node 1, node 2) share the same 2 cores.";

        var pgids = new (string Name, int Pid)[] { ("node 1", cluster.Registry1.Pid), ("node 2", cluster.Registry2.Pid), ("node 2 streaming", streaming.Pid) };
        foreach (var round in Rounds(s))
        {
            foreach (var clients in BlobServingBenchmark.Concurrency)
            {
                foreach (var side in Rotate(sides, round))
                {
                    var before = pgids.Select(p => ProcStat.GroupCpuSeconds(p.Pid)).ToArray();
                    var load = await LoadClient.RunFixedAsync(side.Url, clients, RequestsPerClient(clients, s), ct);
                    var cpu = pgids.Select((p, i) => ProcStat.GroupCpuSeconds(p.Pid) - before[i]).ToArray();
                    if (load.Errors > 0)
                    {
                        throw new InvalidOperationException($"{side.Name} with {clients} clients: {load.Errors} errors. {load.Raw}");
                    }

                    var gib = load.Bytes / ProcStat.MiB / 1024;
                    var node2 = cpu[1] + cpu[2];
                    Log.Info(string.Create(CultureInfo.InvariantCulture, $"  B round {round}: {side.Name,-30} {clients} client(s): {load.MiBPerSecond,8:0} MiB/s  node1 {cpu[0] / gib:0.00} node2 {node2 / gib:0.00} client {load.ClientCpuSeconds / gib:0.00} CPU-s/GiB"));
                    if (round < 0)
                    {
                        continue;
                    }

                    var m = report.Measure($"{side.Name}, {clients} client{(clients == 1 ? "" : "s")}", "MiB/s");
                    m.Rounds.Add(load.MiBPerSecond);
                    m.AddExtra("node 1 registry CPU-s per GiB", cpu[0] / gib);
                    m.AddExtra("node 2 registry CPU-s per GiB", node2 / gib);
                    m.AddExtra("client CPU-s per GiB", load.ClientCpuSeconds / gib);
                }
            }
        }

        foreach (var clients in BlobServingBenchmark.Concurrency)
        {
            var suffix = $"{clients} client{(clients == 1 ? "" : "s")}";
            report.Ratio(
                $"proxied / direct, {suffix}",
                report.Measurements.First(m => m.Name == $"{sides[0].Name}, {suffix}"),
                report.Measurements.First(m => m.Name == $"{sides[2].Name}, {suffix}"),
                Target.AtLeast(0.7));
            report.Ratio(
                $"proxied streamed / direct, {suffix}",
                report.Measurements.First(m => m.Name == $"{sides[1].Name}, {suffix}"),
                report.Measurements.First(m => m.Name == $"{sides[2].Name}, {suffix}"));
        }
    }
}
