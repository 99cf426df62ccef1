using System.Globalization;
using Spegel.Bench.Infra;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// A (issue 3): one large blob served to 1 and 8 concurrent clients by our registry (from containerd's content
/// directory), by nginx with sendfile (the same file) and by docker-registry (the same blob, the upstream it came
/// from); and the registry's resident memory idle and under the 8-client load.
/// </summary>
public sealed class BlobServingBenchmark : Benchmark
{
    public override string Name => "blob";

    public override string Id => "A";

    public override string Title => "Blob serving";

    public override string Issue => "3";

    public override bool NeedsBlobImage => true;

    public static readonly int[] Concurrency = [1, 8];

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        var s = context.Settings;
        var cluster = context.Cluster;
        var image = cluster.Big!;
        var layer = image.LargestLayer;

        // A registry of our own for this benchmark, so that "idle" really is after start and before any request.
        await using var ours = await cluster.StartRegistryAsync("registry-n1-blob", "n1-blob", cluster.Node1, ct: ct);
        await Task.Delay(TimeSpan.FromSeconds(s.Quick ? 0.5 : 2), ct);
        var idleDetail = ours.MemoryDetail ?? throw new InvalidOperationException("the registry is gone");
        var idle = (idleDetail.Rss, idleDetail.Hwm);

        await using var nginx = await NginxServer.StartStaticAsync(Path.Combine(cluster.Node1.ContentPath, "blobs", "sha256"), ct);
        var registryPid = ProcStat.FindPid(cluster.Upstream.ConfigPath) ?? throw new InvalidOperationException("docker-registry's pid not found");

        var sides = new List<(string Name, string Url, int Pgid)>
        {
            ("ours", Cluster.BlobUrl(ours.Url, image, layer.Digest), ours.Pid),
            ("nginx", $"{nginx.Url}/blobs/{layer.Digest.Hex}", nginx.ProcessGroup),
            ("docker-registry", $"{cluster.Upstream.Url}v2/{image.Repository}/blobs/{layer.Digest}", registryPid),
        };
        foreach (var side in sides)
        {
            await VerifyBlobAsync(side.Url, layer.Digest, layer.Size, ct);
        }

        report.Method =
            $"GET of one {layer.Size / ProcStat.MiB:0.##} MiB blob ({layer.Size} bytes, already in the page cache) for {s.LoadDuration.TotalSeconds:0.#} s per measurement " +
            $"by {string.Join(" and ", Concurrency.Select(c => c + (c == 1 ? " client" : " clients")))} (one connection each, keep-alive, bodies read and discarded) with {context.Client.Description}. " +
            "Sides: **ours** = Spegel.Registry serving node 1's containerd content file (`Results.File`, range processing); " +
            "**nginx** = nginx `sendfile on; tcp_nopush on; worker_processes auto` on the same file (`alias` to containerd's `blobs/sha256`); " +
            "**docker-registry** = the upstream the image was pushed to (distribution 2.8, filesystem storage, same bytes). " +
            "Every side is checked to serve exactly the blob's bytes (sha256) first. Each round runs every side back to back in rotating order; " +
            "ratios are taken per round, then the median. Server and client CPU seconds per GiB are from /proc (user+system of the process group) and bash `time`. " +
            "RSS: VmRSS of a registry started for this benchmark, idle after start (before any request), and the highest VmRSS sampled every 20 ms during the 8-client runs; VmHWM at the end.";

        var peakPerRound = report.Measure("ours: peak RSS during 8-client load", "MiB", Target.AtMost(150));
        foreach (var round in Rounds(s))
        {
            foreach (var clients in Concurrency)
            {
                foreach (var side in Rotate(sides, round))
                {
                    RssSampler? sampler = side.Name == "ours" && clients == 8 ? new RssSampler(ours.Pid, TimeSpan.FromMilliseconds(20)) : null;
                    var (load, cpu) = await WithCpuAsync(side.Pgid, () => context.Client.RunAsync(side.Url, clients, s.LoadDuration, ct: ct));
                    if (sampler is not null)
                    {
                        await sampler.DisposeAsync();
                    }

                    if (load.Errors > 0)
                    {
                        throw new InvalidOperationException($"{side.Name} with {clients} clients: {load.Errors} errors. {load.Raw}");
                    }

                    Log.Info(string.Create(CultureInfo.InvariantCulture, $"  A round {round}: {side.Name,-16} {clients} client(s): {load.MiBPerSecond,8:0} MiB/s  server {cpu / (load.Bytes / ProcStat.MiB / 1024):0.00} CPU-s/GiB"));
                    if (round < 0)
                    {
                        continue;
                    }

                    var m = report.Measure($"{side.Name}, {clients} client{(clients == 1 ? "" : "s")}", "MiB/s");
                    m.Rounds.Add(load.MiBPerSecond);
                    var gib = load.Bytes / ProcStat.MiB / 1024;
                    m.AddExtra("server CPU-s per GiB", cpu / gib);
                    m.AddExtra("client CPU-s per GiB", load.ClientCpuSeconds / gib);
                    if (sampler is not null)
                    {
                        peakPerRound.Rounds.Add(sampler.PeakRss / ProcStat.MiB);
                    }
                }
            }
        }

        var hwm = ours.Memory ?? idle;
        await Task.Delay(TimeSpan.FromSeconds(s.Quick ? 0.5 : 2), ct);
        var after = ours.Memory ?? idle;
        var idleMeasure = report.Measure("ours: idle RSS after start", "MiB", Target.AtMost(60));
        idleMeasure.Rounds.Add(idle.Rss / ProcStat.MiB);
        report.Measure("ours: idle PSS after start (shared pages split among the processes mapping them)", "MiB").Rounds.Add(idleDetail.Pss / ProcStat.MiB);
        report.Measure("ours: idle anonymous RSS after start (heaps, stacks)", "MiB").Rounds.Add(idleDetail.Anon / ProcStat.MiB);
        report.Measure("ours: VmHWM at the end (peak since start)", "MiB").Rounds.Add(hwm.Hwm / ProcStat.MiB);
        report.Notes.Add($"Idle registry after start: {idleDetail.Describe()}. File-backed pages (the runtime, CoreLib, ASP.NET assemblies) are shared with every other .NET process on the node.");
        report.Measure("ours: RSS idle after the load", "MiB").Rounds.Add(after.Rss / ProcStat.MiB);

        foreach (var clients in Concurrency)
        {
            var suffix = $"{clients} client{(clients == 1 ? "" : "s")}";
            var o = report.Measurements.First(m => m.Name == $"ours, {suffix}");
            report.Ratio($"ours / nginx, {suffix}", o, report.Measurements.First(m => m.Name == $"nginx, {suffix}"), clients == 8 ? Target.AtLeast(0.8) : null);
            report.Ratio($"ours / docker-registry, {suffix}", o, report.Measurements.First(m => m.Name == $"docker-registry, {suffix}"), clients == 8 ? Target.AtLeast(1.0) : null);
        }
    }
}
