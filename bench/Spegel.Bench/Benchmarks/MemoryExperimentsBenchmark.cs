using System.Globalization;
using Spegel.Bench.Infra;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// F (issue 3, why the memory is what it is): the registry's idle and peak RSS and its 8-client throughput under
/// runtime settings that change the GC and the JIT, each in a fresh process, to show what the numbers of A are made of
/// and which setting closes the gap.
/// </summary>
public sealed class MemoryExperimentsBenchmark : Benchmark
{
    /// <summary>Runtime knobs, as environment variables (every one is also a runtimeconfig.json property).</summary>
    public static readonly (string Name, Dictionary<string, string> Environment)[] Variants =
    [
        ("default (Server GC, DATAS)", []),
        ("DOTNET_gcServer=0 (workstation GC)", new() { ["DOTNET_gcServer"] = "0" }),
        ("DOTNET_GCDynamicAdaptationMode=0 (Server GC without DATAS)", new() { ["DOTNET_GCDynamicAdaptationMode"] = "0" }),
        ("DOTNET_GCgen0size=0x400000 (4 MiB gen0 budget)", new() { ["DOTNET_GCgen0size"] = "0x400000" }),
        ("DOTNET_GCHeapHardLimit=0x2000000 (32 MiB GC heap)", new() { ["DOTNET_GCHeapHardLimit"] = "0x2000000" }),
        ("DOTNET_TieredPGO=0", new() { ["DOTNET_TieredPGO"] = "0" }),
        ("DOTNET_EnableWriteXorExecute=0 (no double-mapped JIT code)", new() { ["DOTNET_EnableWriteXorExecute"] = "0" }),
        ("workstation GC + 4 MiB gen0 + W^X off", new() { ["DOTNET_gcServer"] = "0", ["DOTNET_GCgen0size"] = "0x400000", ["DOTNET_EnableWriteXorExecute"] = "0" }),
    ];

    public override string Name => "memory";

    public override string Id => "F";

    public override string Title => "Registry memory: runtime settings compared";

    public override string Issue => "3";

    public override bool NeedsBlobImage => true;

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        report.SummarizeTablesOnly = true;
        var s = context.Settings;
        var cluster = context.Cluster;
        var image = cluster.Big!;
        var layer = image.LargestLayer;
        const int clients = 8;
        var settle = TimeSpan.FromSeconds(s.Quick ? 0.5 : 2);
        report.Method =
            $"For each setting, a fresh registry process on node 1's content: RSS {settle.TotalSeconds:0.#} s after it is ready (idle, no request yet), then {clients} clients " +
            $"GET the {layer.Size / ProcStat.MiB:0.#} MiB blob for {s.LoadDuration.TotalSeconds:0.#} s ({context.Client.Description}) while VmRSS is sampled every 20 ms; " +
            "VmHWM at the end. One run per setting (a diagnosis, not a comparison with a target); the throughput ratio is against the default run just before.";
        var table = new ReportTable
        {
            Title = "Idle and peak RSS (MiB) and 8-client throughput by runtime setting",
            Headers = ["setting", "idle RSS", "of which anon / file / shmem", "idle PSS", "peak RSS under load", "VmHWM", "MiB/s, 8 clients", "vs default"],
        };
        double? baseline = null;
        foreach (var (name, environment) in s.Quick ? Variants.Take(1) : Variants)
        {
            await using var registry = await cluster.StartRegistryAsync($"registry-mem-{Variants.ToList().FindIndex(v => v.Name == name)}", "n1-mem", cluster.Node1, environment: environment, ct: ct);
            await Task.Delay(settle, ct);
            var idle = registry.MemoryDetail ?? throw new InvalidOperationException($"{name}: the registry is gone:\n{registry.ReadLogTail()}");
            var url = Cluster.BlobUrl(registry.Url, image, layer.Digest);
            LoadResult load;
            long peak;
            await using (var sampler = new RssSampler(registry.Pid, TimeSpan.FromMilliseconds(20)))
            {
                load = await context.Client.RunAsync(url, clients, s.LoadDuration, ct: ct);
                await Task.Delay(50, ct);
                peak = sampler.PeakRss;
            }

            var end = registry.Memory ?? (idle.Rss, idle.Hwm);
            baseline ??= load.MiBPerSecond;
            table.Rows.Add(
            [
                name, Report.Format(idle.Rss / ProcStat.MiB),
                $"{Report.Format(idle.Anon / ProcStat.MiB)} / {Report.Format(idle.File / ProcStat.MiB)} / {Report.Format(idle.Shmem / ProcStat.MiB)}",
                Report.Format(idle.Pss / ProcStat.MiB), Report.Format(peak / ProcStat.MiB), Report.Format(end.Hwm / ProcStat.MiB),
                Report.Format(load.MiBPerSecond), Report.Format(load.MiBPerSecond / baseline.Value) + "×",
            ]);
            report.Measure($"{name}: idle RSS", "MiB").Rounds.Add(idle.Rss / ProcStat.MiB);
            report.Measure($"{name}: peak RSS, {clients} clients", "MiB").Rounds.Add(peak / ProcStat.MiB);
            Log.Info(string.Create(CultureInfo.InvariantCulture, $"  F {name}: idle {idle.Rss / ProcStat.MiB:0.0} MiB, peak {peak / ProcStat.MiB:0.0} MiB, HWM {end.Hwm / ProcStat.MiB:0.0} MiB, {load.MiBPerSecond:0} MiB/s"));
        }

        report.Tables.Add(table);
    }
}
