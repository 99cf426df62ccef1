using System.Globalization;
using System.Net;
using System.Reflection;
using Spegel.Bench.Infra;
using Spegel.TestRig;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// G (issue 3, what would close the gap to nginx): a minimal Kestrel server sending the same blob three ways — as
/// the registry does today (<c>Results.File</c>), straight into the response pipe's memory, and with 1 MiB buffers —
/// next to the registry and nginx in the same rounds; and the idle memory of the bare server with
/// <c>WebApplication.CreateBuilder</c> and <c>CreateSlimBuilder</c>.
/// </summary>
public sealed class ServingExperimentsBenchmark : Benchmark
{
    private static readonly HttpClient Probe = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };

    public override string Name => "kestrel";

    public override string Id => "G";

    public override string Title => "Serving experiments: how Kestrel could send a blob";

    public override string Issue => "3";

    public override bool NeedsBlobImage => true;

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        var s = context.Settings;
        var cluster = context.Cluster;
        var image = cluster.Big!;
        var layer = image.LargestLayer;
        var file = cluster.Node1.BlobPath(layer.Digest);
        const int clients = 8;

        // Idle memory: the slim variant in a process of its own (not in --quick), the full one is the server used below.
        var idle = new Dictionary<string, MemoryDetail>();
        if (!s.Quick)
        {
            await using var probe = await StartAsync(context.Paths, file, "slim", ct);
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            idle["slim"] = ProcStat.ReadMemoryDetail(probe.Id) ?? throw new InvalidOperationException("the experiment server is gone");
        }

        await using var server = await StartAsync(context.Paths, file, "full", ct);
        await Task.Delay(TimeSpan.FromSeconds(s.Quick ? 0.5 : 2), ct);
        idle["full"] = ProcStat.ReadMemoryDetail(server.Id) ?? throw new InvalidOperationException("the experiment server is gone");
        await using var nginx = await NginxServer.StartStaticAsync(Path.Combine(cluster.Node1.ContentPath, "blobs", "sha256"), ct);
        var url = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{server.Port}");
        var sides = new List<(string Name, string Url, int Pgid)>
        {
            ("registry (ours)", Cluster.BlobUrl(cluster.Registry1.Url, image, layer.Digest), cluster.Registry1.Pid),
            ("bare Kestrel, Results.File", url + "/file", server.Id),
            ("bare Kestrel, read into the response pipe", url + "/pipe", server.Id),
            ("bare Kestrel, 1 MiB stream copy", url + "/stream", server.Id),
            ("nginx sendfile", $"{nginx.Url}/blobs/{layer.Digest.Hex}", nginx.ProcessGroup),
        };
        foreach (var side in sides)
        {
            await VerifyBlobAsync(side.Url, layer.Digest, layer.Size, ct);
        }

        report.Method =
            $"{clients} clients GET the {layer.Size / ProcStat.MiB:0.#} MiB blob for {s.LoadDuration.TotalSeconds:0.#} s per measurement ({context.Client.Description}), every side once per round in rotating order. " +
            "The bare Kestrel server is this harness run as `Spegel.Bench __serve` (a `WebApplication` with logging off and three endpoints): " +
            "`/file` = `Results.File` as the registry does (Kestrel has no sendfile; it copies through a 64 KiB FileStream buffer and the response pipe, dotnet/aspnetcore#18093); " +
            "`/pipe` = `RandomAccess.Read` of 256 KiB straight into `Response.BodyWriter.GetMemory()`, then `FlushAsync` (one user-space copy fewer); " +
            "`/stream` = a 1 MiB `FileStream` → `Response.Body` copy. " +
            "Part 2, the proxy path of B with 1 client: the bare server fetches the blob from node 1's registry (`X-Spegel-Mirrored: true`) and SHA-256es it, " +
            "`/proxy-stream` as node 2's registry does today (128 KiB pooled buffer, the newest chunk held back, the previous one written to `Response.Body`), " +
            "`/proxy-pipe` reading from the peer straight into `Response.BodyWriter.GetMemory()`, hashing in place and flushing all but the last chunk until the digest is known, " +
            "`/proxy-pipe-nohash` the same without the hash. Idle RSS of the same bare server started with `CreateSlimBuilder` and `CreateBuilder` (2 s after start, no request).";
        foreach (var round in Rounds(s).Take(s.Quick ? 1 : s.WarmupRounds + 3))
        {
            foreach (var side in Rotate(sides, round))
            {
                var (load, cpu) = await WithCpuAsync(side.Pgid, () => context.Client.RunAsync(side.Url, clients, s.LoadDuration, ct: ct));
                if (load.Errors > 0)
                {
                    throw new InvalidOperationException($"{side.Name}: {load.Errors} errors. {load.Raw}");
                }

                var gib = load.Bytes / ProcStat.MiB / 1024;
                Log.Info(string.Create(CultureInfo.InvariantCulture, $"  G round {round}: {side.Name,-42} {load.MiBPerSecond,8:0} MiB/s  server {cpu / gib:0.00} CPU-s/GiB"));
                if (round < 0)
                {
                    continue;
                }

                var m = report.Measure($"{side.Name}, {clients} clients", "MiB/s");
                m.Rounds.Add(load.MiBPerSecond);
                m.AddExtra("server CPU-s per GiB", cpu / gib);
                m.AddExtra("client CPU-s per GiB", load.ClientCpuSeconds / gib);
            }
        }

        var nginxM = report.Measurements.First(m => m.Name.StartsWith("nginx", StringComparison.Ordinal));
        foreach (var m in report.Measurements.Where(m => m != nginxM && m.Name.EndsWith($", {clients} clients", StringComparison.Ordinal)).ToList())
        {
            report.Ratio($"{m.Name.Replace($", {clients} clients", string.Empty, StringComparison.Ordinal)} / nginx", m, nginxM);
        }

        // Part 2: the proxy path (B) — node 2's registry against the same job done two ways by the bare server, 1 client.
        var peerBlob = Cluster.BlobUrl(cluster.Registry1.Url, image, layer.Digest);
        var from = "?" + ServingExperimentServer.FromParameter + "=" + Uri.EscapeDataString(peerBlob);
        var proxySides = new List<(string Name, string Url, int Pgid)>
        {
            ("proxy: node 2's registry (ours)", Cluster.BlobUrl(cluster.Registry2.Url, image, layer.Digest), cluster.Registry2.Pid),
            ("proxy: bare Kestrel, today's copy loop", url + "/proxy-stream" + from, server.Id),
            ("proxy: bare Kestrel, into the response pipe", url + "/proxy-pipe" + from, server.Id),
            ("proxy: bare Kestrel, into the pipe, no hash", url + "/proxy-pipe-nohash" + from, server.Id),
            ("direct from node 1", peerBlob, cluster.Registry1.Pid),
        };
        foreach (var side in proxySides)
        {
            await VerifyBlobAsync(side.Url, layer.Digest, layer.Size, ct);
        }

        foreach (var round in Rounds(s).Take(s.Quick ? 1 : s.WarmupRounds + 3))
        {
            foreach (var side in Rotate(proxySides, round))
            {
                var (load, cpu) = await WithCpuAsync(side.Pgid, () => context.Client.RunAsync(side.Url, 1, s.LoadDuration, ct: ct));
                if (load.Errors > 0)
                {
                    throw new InvalidOperationException($"{side.Name}: {load.Errors} errors. {load.Raw}");
                }

                var gib = load.Bytes / ProcStat.MiB / 1024;
                Log.Info(string.Create(CultureInfo.InvariantCulture, $"  G round {round}: {side.Name,-46} {load.MiBPerSecond,8:0} MiB/s  proxy {cpu / gib:0.00} CPU-s/GiB"));
                if (round < 0)
                {
                    continue;
                }

                var m = report.Measure($"{side.Name}, 1 client", "MiB/s");
                m.Rounds.Add(load.MiBPerSecond);
                m.AddExtra(side.Name.StartsWith("direct", StringComparison.Ordinal) ? "node 1 CPU-s per GiB" : "proxy CPU-s per GiB", cpu / gib);
            }
        }

        var directM = report.Measurements.First(m => m.Name == "direct from node 1, 1 client");
        foreach (var m in report.Measurements.Where(m => m.Name.StartsWith("proxy", StringComparison.Ordinal)).ToList())
        {
            report.Ratio($"{m.Name.Replace(", 1 client", string.Empty, StringComparison.Ordinal)} / direct from node 1", m, directM);
        }

        report.Tables.Add(new ReportTable
        {
            Title = "Idle memory of the bare Kestrel server (MiB)",
            Headers = ["builder", "RSS", "anonymous", "file-backed", "shared memory", "PSS"],
            Rows = idle.Select(kv => new List<string>
            {
                kv.Key == "slim" ? "WebApplication.CreateSlimBuilder" : "WebApplication.CreateBuilder",
                Report.Format(kv.Value.Rss / ProcStat.MiB), Report.Format(kv.Value.Anon / ProcStat.MiB), Report.Format(kv.Value.File / ProcStat.MiB),
                Report.Format(kv.Value.Shmem / ProcStat.MiB), Report.Format(kv.Value.Pss / ProcStat.MiB),
            }).ToList(),
        });
    }

    private sealed class ExperimentServer(BackgroundProcess process, int port) : IAsyncDisposable
    {
        public int Id => process.Id;

        public int Port => port;

        public async ValueTask DisposeAsync()
        {
            await process.StopAsync(TimeSpan.FromSeconds(5));
            await process.DisposeAsync();
        }
    }

    private static async Task<ExperimentServer> StartAsync(BenchPaths paths, string file, string mode, CancellationToken ct)
    {
        var port = Ports.GetFreeTcpPort();
        var url = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}");
        var assembly = Assembly.GetEntryAssembly()!.Location;
        var process = BackgroundProcess.Start(
            RequiredTools.Find("dotnet", "dotnet-sdk-10.0"),
            [assembly, ServingExperimentServer.Command, url, file, mode],
            Path.Combine(paths.LogDirectory, $"kestrel-{mode}.log"));
        var server = new ExperimentServer(process, port);
        try
        {
            await Poll.WaitUntilAsync(
                async token =>
                {
                    if (process.HasExited)
                    {
                        throw new InvalidOperationException($"the experiment server exited: {process.ReadLogTail()}");
                    }

                    try
                    {
                        using var response = await Probe.GetAsync(new Uri(url + "/healthz"), token);
                        return response.StatusCode == HttpStatusCode.OK;
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                },
                TimeSpan.FromSeconds(30),
                "the experiment server",
                TimeSpan.FromMilliseconds(50),
                ct);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }
}
