using System.Diagnostics;
using System.Globalization;
using Spegel.Bench.Infra;
using Spegel.TestRig;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// I (issue 9, items 5 and 6): eight more nodes pull the same image at the same moment after node 1 has it, through
/// their own registries; the bytes the upstream served are counted (target: one copy in all, node 1's). The same
/// rounds give each service's idle and peak RSS and its CPU seconds per GiB served.
/// </summary>
public sealed class FanoutBenchmark : Benchmark
{
    public const int Pullers = 8;

    public override string Name => "fanout";

    public override string Id => "I";

    public override string Title => "Concurrency: 8 nodes pull the same image at once; upstream bytes; resources per service";

    public override string Issue => "9";

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        var s = context.Settings;
        var cluster = context.Cluster;
        var layerSize = s.FanoutImageSize / s.PullLayers;
        Log.Info($"  I: building the {s.FanoutImageSize / ProcStat.MiB:0.#} MiB image and starting {Pullers} containerds and registries");
        var building = BenchImages.BuildAsync(cluster.Upstream, "bench/fanout", "v1", Enumerable.Repeat(layerSize, s.PullLayers).ToList(), ct);

        // Every byte the upstream sends goes through this proxy (no rate limit) and is counted from its access log.
        await using var counter = await NginxServer.StartThrottledProxyAsync(cluster.Upstream.Url, 0, ct);
        var nodes = new List<ContainerdInstance>();
        var registries = new List<SpegelService>();
        var hostsRoot = RigDirectory.Create("hosts");
        try
        {
            nodes.AddRange(await Task.WhenAll(Enumerable.Range(0, Pullers).Select(_ => ContainerdInstance.StartAsync(ct: ct))));
            registries.AddRange(await Task.WhenAll(nodes.Select((n, i) => cluster.StartRegistryAsync($"registry-f{i + 1}", $"f{i + 1}", n, s.FanoutRegistryArgs, ct: ct))));
            var image = await building;

            // Node 1 gets the image from the upstream through the counter: that is the one copy the cluster should need.
            var node1Hosts = Path.Combine(hostsRoot, "n1");
            HostsDir.Write(node1Hosts, image.Registry, counter.Url, counter.Url);
            (await cluster.Node1.PullAsync(image.Reference, hostsDir: node1Hosts, unpack: false, timeout: TimeSpan.FromMinutes(3), ct: ct)).EnsureSuccess();
            var (node1Bytes, _) = counter.ReadAndResetAccessLog();
            await cluster.WaitAdvertisedAsync(image, ct);

            var mirrored = new List<string>();
            var direct = Path.Combine(hostsRoot, "direct");
            HostsDir.Write(direct, image.Registry, counter.Url, counter.Url);
            for (var i = 0; i < Pullers; i++)
            {
                var dir = Path.Combine(hostsRoot, $"f{i + 1}");
                HostsDir.Write(dir, image.Registry, counter.Url, registries[i].Url);
                mirrored.Add(dir);
            }

            report.Method =
                $"An image of {image.Layers.Count} layers × {layerSize / ProcStat.MiB:0.##} MiB ({image.TotalSize / ProcStat.MiB:0.##} MiB in all). " +
                "Every upstream request goes through an nginx reverse proxy in front of docker-registry (no rate limit) whose access log counts the body bytes sent. " +
                $"Node 1 pulls the image once through it (counted: {node1Bytes / ProcStat.MiB:0.##} MiB) and its indexer advertises it. Then {Pullers} more nodes " +
                "(each its own containerd and registry, no indexer, so node 1 stays the only holder) run `ctr images pull` (fetch and unpack) all at the same moment: " +
                "**mirror**: hosts.toml lists the node's own registry, then the counting upstream as `server` (the configuration `./spegel configure-containerd` writes); " +
                "**direct**: the counting upstream only (docker-registry, unthrottled: every node fetches its own copy). " +
                $"Time = from the start of the {Pullers} pulls to the end of the last one. Reference: one node alone through its mirror in the same round. " +
                "Every node is emptied (image and content removed) before each side. Upstream bytes in copies = (node 1's pull + the bytes sent during the mirrored pulls) / the image size; target one copy. " +
                "Resources: each service's VmRSS idle (before the round) and the highest VmRSS sampled every 50 ms during the mirrored pulls; CPU seconds (user + system, /proc) " +
                "during the mirrored pulls per GiB that service sent (node 1's registry: every puller's copy; each puller's registry: its own copy); resolver and indexer per pull.";

            var copies = report.Measure("upstream bytes, node 1's pull + 8 mirrored pulls, in image copies", "copies");
            var memory = new Dictionary<string, (List<double> Idle, List<double> Peak, List<double> CpuPerGib)>();
            string[] sides = ["mirror, 8 at once", "direct, 8 at once", "mirror, 1 alone"];
            foreach (var round in Rounds(s with { Rounds = s.FanoutRounds }))
            {
                foreach (var side in Rotate(sides, round))
                {
                    await Task.WhenAll(nodes.Select(n => CleanAsync(n, image, ct)));
                    counter.ReadAndResetAccessLog();
                    var watched = side == "mirror, 8 at once" ? Watch(cluster, registries) : null;
                    var idle = watched?.ToDictionary(w => w.Name, w => (ProcStat.ReadMemory(w.Pid)?.Rss ?? 0) / ProcStat.MiB);
                    var cpuBefore = watched?.ToDictionary(w => w.Name, w => ProcStat.CpuSeconds(w.Pid));
                    var samplers = watched?.ToDictionary(w => w.Name, w => new RssSampler(w.Pid, TimeSpan.FromMilliseconds(50)));
                    var count = side == "mirror, 1 alone" ? 1 : Pullers;
                    var started = Stopwatch.GetTimestamp();
                    var results = await Task.WhenAll(Enumerable.Range(0, count).Select(i =>
                        nodes[i].PullAsync(image.Reference, hostsDir: side.StartsWith("direct", StringComparison.Ordinal) ? direct : mirrored[i], unpack: true, timeout: TimeSpan.FromMinutes(5), ct: ct)));
                    var wall = Stopwatch.GetElapsedTime(started).TotalSeconds;
                    foreach (var r in results)
                    {
                        r.EnsureSuccess();
                    }

                    var (bytes, lines) = counter.ReadAndResetAccessLog();
                    Log.Info(string.Create(CultureInfo.InvariantCulture, $"  I round {round}: {side,-18} {wall:0.00} s, upstream sent {bytes / ProcStat.MiB:0.0} MiB in {lines.Count} requests"));
                    if (samplers is not null)
                    {
                        foreach (var sampler in samplers.Values)
                        {
                            await sampler.DisposeAsync();
                        }
                    }

                    if (round < 0)
                    {
                        continue;
                    }

                    var m = report.Measure($"{side}: time until every pull finished", "s");
                    m.Rounds.Add(wall);
                    m.AddExtra("slowest single pull, s", results.Max(r => r.Elapsed.TotalSeconds));
                    m.AddExtra("fastest single pull, s", results.Min(r => r.Elapsed.TotalSeconds));
                    report.Measure($"{side}: upstream bytes", "MiB").Rounds.Add(bytes / ProcStat.MiB);
                    if (side == "mirror, 8 at once")
                    {
                        copies.Rounds.Add((node1Bytes + bytes) / (double)image.TotalSize);
                        var gib = image.TotalSize / ProcStat.MiB / 1024;
                        foreach (var w in watched!)
                        {
                            var cpu = ProcStat.CpuSeconds(w.Pid) - cpuBefore![w.Name];
                            var served = w.Name switch
                            {
                                "registry, node 1 (serves every puller)" => gib * Pullers,
                                "registry, one of the 8 pullers" => gib,
                                _ => Pullers, // per pull for the resolver and the indexer
                            };
                            if (!memory.TryGetValue(w.Name, out var rows))
                            {
                                memory[w.Name] = rows = ([], [], []);
                            }

                            rows.Idle.Add(idle![w.Name]);
                            rows.Peak.Add(samplers![w.Name].PeakRss / ProcStat.MiB);
                            rows.CpuPerGib.Add(cpu / served);
                        }
                    }
                }
            }

            await Task.WhenAll(nodes.Select(n => CleanAsync(n, image, ct)));

            // One copy is the target in every round, not in the median one: a round where a mirror gave up is a miss.
            report.Measure("upstream bytes in image copies, worst round", "copies", Target.AtMost(1.0)).Rounds.Add(copies.Max);
            var leaked = report.Measurements.First(m => m.Name == "mirror, 8 at once: upstream bytes").Rounds.Count(b => b > 0);
            report.Measure("rounds in which the upstream sent bytes during the 8 mirrored pulls", "rounds", Target.AtMost(0)).Rounds.Add(leaked);
            if (leaked > 0)
            {
                report.Notes.Add("In a round where the upstream sent bytes during the mirrored pulls, a puller's registry answered 404 for some blobs and containerd " +
                    "fell back to the upstream (`source: miss` with a latency above the registry's `Spegel:MirrorResolveTimeout` in registry-f*.log of the run's log directory).");
            }

            report.Ratio(
                "mirror / direct, 8 at once, time",
                report.Measurements.First(m => m.Name == "mirror, 8 at once: time until every pull finished"),
                report.Measurements.First(m => m.Name == "direct, 8 at once: time until every pull finished"));
            report.Ratio(
                "mirror, 8 at once / 1 alone, time",
                report.Measurements.First(m => m.Name == "mirror, 8 at once: time until every pull finished"),
                report.Measurements.First(m => m.Name == "mirror, 1 alone: time until every pull finished"));

            var table = new ReportTable
            {
                Title = "Resources per service during the 8 mirrored pulls (medians over rounds)",
                Headers = ["service", "idle RSS, MiB", "peak RSS, MiB", "CPU-s per GiB sent (resolver, indexer: per pull)"],
            };
            foreach (var (name, rows) in memory)
            {
                table.Rows.Add([name, Report.Format(Stats.Median(rows.Idle)), Report.Format(Stats.Median(rows.Peak)), Report.Format(Stats.Median(rows.CpuPerGib))]);
                report.Measure($"{name}: peak RSS", "MiB").Rounds.AddRange(rows.Peak);
                report.Measure($"{name}: {(name.StartsWith("registry", StringComparison.Ordinal) ? "CPU-s per GiB sent" : "CPU-s per pull")}", "CPU-s").Rounds.AddRange(rows.CpuPerGib);
            }

            report.Tables.Add(table);
            report.Notes.Add(string.Create(CultureInfo.InvariantCulture, $"Node 1's one pull from the upstream sent {node1Bytes} bytes; the image is {image.TotalSize} bytes."));
        }
        finally
        {
            foreach (var r in registries)
            {
                await r.DisposeAsync();
            }

            foreach (var n in nodes)
            {
                await n.DisposeAsync();
            }

            await RigDirectory.RemoveAsync(hostsRoot);
        }
    }

    /// <summary>The processes whose resources are reported; one of the 8 pullers' registries stands for all (they do the same work).</summary>
    private static List<(string Name, int Pid)> Watch(Cluster cluster, List<SpegelService> registries) =>
    [
        ("registry, node 1 (serves every puller)", cluster.Registry1.Pid),
        ("registry, one of the 8 pullers", registries[registries.Count / 2].Pid),
        ("resolver", cluster.Resolver.Pid),
        ("indexer, node 1", cluster.Indexer1.Pid),
    ];

    private static async Task CleanAsync(ContainerdInstance node, BenchImage image, CancellationToken ct)
    {
        await node.RemoveImageAsync(image.Reference, ct);
        await node.CtrAsync(["content", "rm", .. image.Blobs.Select(b => b.Digest.ToString())], ct: ct);
    }
}
