using System.Globalization;
using System.Text.Json;
using Spegel.TestRig;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// J (issue 9, item 7): the resolver's map at 10, 100 and 1,000 nodes, in memory and through the Dapr sidecar double:
/// ingest rate, lookup latency and memory, and how each grows. Runs bench/Spegel.ResolverBench as a child process (its
/// own heap, so the managed-memory numbers are the map's) and draws the growth as a PNG next to the run's report.
/// </summary>
public sealed class ResolverScaleBenchmark : Benchmark
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public override string Name => "scale";

    public override string Id => "J";

    public override string Title => "Resolver at scale (10 → 100 → 1,000 nodes)";

    public override string Issue => "9";

    public override bool NeedsCluster => false;

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        var paths = context.Paths;
        var dll = Path.Combine(paths.RepoRoot, "artifacts", "bin", "Spegel.ResolverBench", paths.Configuration, "Spegel.ResolverBench.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException("Spegel.ResolverBench is not built: build bench/Spegel.Bench (it builds it) first.", dll);
        }

        // One process per scale: each measures its own heap from a clean start. The first also checks the prefill.
        var quick = context.Settings.Quick;
        string[] scales = quick
            ? ["memory:10:10", "memory:30:10", "memory:100:10", "dapr:10:10", "dapr:30:10", "dapr:100:10"]
            // memory:1000:10 is the double's largest shape (100,000 entries) in memory, the side-by-side issue 4 asks for.
            : ["memory:10:500", "memory:100:500", "memory:1000:500", "memory:1000:10", "dapr:10:10", "dapr:100:10", "dapr:1000:10"];
        var rows = new List<ScaleRow>();
        string? prefillCheck = null;
        foreach (var scale in scales)
        {
            var output = Path.Combine(paths.LogDirectory, $"resolver-scale-{scale.Replace(':', '-')}.json");
            List<string> args = [dll, "--scale", scale, "--out", output];
            if (quick)
            {
                args.Add("--quick");
            }

            if (prefillCheck is not null)
            {
                args.Add("--no-check");
            }

            var run = await ProcessRunner.RunAsync(RequiredTools.Find("dotnet", "dotnet-sdk-10.0"), args, TimeSpan.FromMinutes(quick ? 2 : 8), paths.LogDirectory, ct);
            await File.AppendAllTextAsync(Path.Combine(paths.LogDirectory, "resolver-scale.log"), run.StdOut + run.StdErr, ct);
            run.EnsureSuccess();
            foreach (var line in run.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Log.Info("  J: " + line);
            }

            var result = JsonSerializer.Deserialize<ScaleOutput>(await File.ReadAllTextAsync(output, ct), Json)
                ?? throw new InvalidDataException($"{output} holds no results");
            prefillCheck ??= result.PrefillCheck;
            rows.AddRange(result.Results);
        }

        var images = string.Join(" and ", rows.Select(r => r.ImagesPerNode).Distinct().Select(i => i.ToString(CultureInfo.InvariantCulture)));
        report.Method =
            "`bench/Spegel.ResolverBench` (a child process): the resolver's own domain (event dispatcher, peer map, lookup) over the in-memory store and over " +
            "the Dapr state API through the sidecar double (gRPC, in process). Each scale is N nodes × " + images + " images per node of 10 digests, drawn from a shared catalogue " +
            "of twice as many images, so every digest is held by about half the nodes. The map after every node advertised its images is written straight into " +
            "the store in the resolver's own record types and keys (bulk ingest of the whole map through the resolver grows with nodes², see below); " +
            "a check first builds a small map both ways (real events, prefill) and requires the same keys and holders. Then, timed: real `advertised` events on top " +
            "(each a node advertising an image of the catalogue it does not hold yet, nodes in parallel: the ingest rate at that size), 10,000 random digest lookups " +
            "one at a time (p50, p99, max), and the managed heap growth (GC.GetTotalMemory; with the double the stored values are in the same heap). Each scale runs in its own process. " + prefillCheck + ".";

        var table = new ReportTable
        {
            Title = "Resolver at scale",
            Headers = ["store", "nodes × images", "(digest, node) entries", "holders per digest", "digest record", "ingest", "lookup p50", "lookup p99", "lookup max", "managed memory"],
        };
        foreach (var r in rows)
        {
            table.Rows.Add(
            [
                r.Store == "dapr" ? "dapr double" : "memory",
                string.Create(CultureInfo.InvariantCulture, $"{r.Nodes:N0} × {r.ImagesPerNode}"),
                r.Entries.ToString("N0", CultureInfo.InvariantCulture),
                Report.Format(r.MeanHolders),
                $"{Report.Format(r.MeanDigestRecordBytes / 1024)} KiB",
                $"{Report.Format(r.EventsPerSecond)} events/s",
                $"{Report.Format(r.LookupP50Ms)} ms",
                $"{Report.Format(r.LookupP99Ms)} ms",
                $"{Report.Format(r.LookupMaxMs)} ms",
                $"{Report.Format(r.ManagedMiB)} MiB ({Report.Format(r.BytesPerEntry)} B/entry)",
            ]);
            var label = string.Create(CultureInfo.InvariantCulture, $"{(r.Store == "dapr" ? "dapr double" : "memory")}, {r.Nodes} nodes × {r.ImagesPerNode}");
            var largestMemory = r.Store == "memory" && r.Entries == rows.Where(x => x.Store == "memory").Max(x => x.Entries);
            report.Measure($"{label}: lookup p99", "ms", largestMemory && !context.Settings.Quick ? Target.AtMost(2) : null).Rounds.Add(r.LookupP99Ms);
            report.Measure($"{label}: ingest", "events/s").Rounds.Add(r.EventsPerSecond);
            report.Measure($"{label}: managed memory", "MiB").Rounds.Add(r.ManagedMiB);
        }

        report.Tables.Add(table);

        // Why a lookup costs what it does: the two reads it makes, each timed alone, and the garbage it leaves.
        var profile = new ReportTable
        {
            Title = "Where a lookup's time goes (each part timed alone over 2,000 random digests)",
            Headers = ["store", "nodes", "digest record read + deserialize p50 / p99", "holders' node records read p50 / p99", "allocated per lookup", "GC pauses during the 10,000 lookups (gen2 count)"],
        };
        foreach (var r in rows)
        {
            profile.Rows.Add(
            [
                r.Store == "dapr" ? "dapr double" : "memory", r.Nodes.ToString("N0", CultureInfo.InvariantCulture),
                $"{Report.Format(r.DigestReadP50Ms)} / {Report.Format(r.DigestReadP99Ms)} ms", $"{Report.Format(r.NodeReadsP50Ms)} / {Report.Format(r.NodeReadsP99Ms)} ms",
                $"{Report.Format(r.AllocatedKiBPerLookup)} KiB", string.Create(CultureInfo.InvariantCulture, $"{Report.Format(r.LookupGcPauseMs)} ms ({r.LookupGen2Collections})"),
            ]);
        }

        report.Tables.Add(profile);

        // Growth per tenfold nodes: linear would be 10× for memory and 1× for lookup and ingest cost per event.
        var growth = new ReportTable
        {
            Title = "Growth from one scale to the next (same images per node)",
            Headers = ["store", "nodes", "memory ×", "lookup p50 ×", "lookup p99 ×", "time per ingested event ×"],
        };
        foreach (var store in Series(rows))
        {
            var ordered = store.OrderBy(r => r.Nodes).ToList();
            for (var i = 1; i < ordered.Count; i++)
            {
                var (a, b) = (ordered[i - 1], ordered[i]);
                growth.Rows.Add(
                [
                    store.Key.Store == "dapr" ? "dapr double" : "memory",
                    string.Create(CultureInfo.InvariantCulture, $"{a.Nodes} → {b.Nodes} ({(double)b.Nodes / a.Nodes:0.#}×)"),
                    Report.Format(b.ManagedMiB / a.ManagedMiB), Report.Format(b.LookupP50Ms / a.LookupP50Ms), Report.Format(b.LookupP99Ms / a.LookupP99Ms),
                    Report.Format(a.EventsPerSecond / b.EventsPerSecond),
                ]);
            }
        }

        report.Tables.Add(growth);
        if (!quick)
        {
            var sideBySide = rows.Where(r => r.Nodes == 1000 && r.ImagesPerNode == 10).ToList();
            if (sideBySide.Count == 2)
            {
                var (memory, dapr) = (sideBySide.Single(r => r.Store == "memory"), sideBySide.Single(r => r.Store == "dapr"));
                report.Notes.Add(string.Create(CultureInfo.InvariantCulture,
                    $"Same 100,000 entries (1,000 nodes × 10) in memory and through the double: ingest {Report.Format(memory.EventsPerSecond)} vs {Report.Format(dapr.EventsPerSecond)} events/s, lookup p50 {Report.Format(memory.LookupP50Ms)} vs {Report.Format(dapr.LookupP50Ms)} ms, p99 {Report.Format(memory.LookupP99Ms)} vs {Report.Format(dapr.LookupP99Ms)} ms."));
            }
        }

        var chart = Path.Combine(paths.ResultsDirectory, paths.RunStamp + "-resolver-scale.png");
        ScaleChart.Draw(rows, chart);
        report.Notes.Add($"Chart: `{Path.GetFileName(chart)}` (next to this report): each quantity relative to the smallest scale, against nodes, log–log; the dashed line is linear growth.");
    }

    /// <summary>Rows that grow along one line (same store, same images per node) with at least two scales.</summary>
    internal static IEnumerable<IGrouping<(string Store, int ImagesPerNode), ScaleRow>> Series(IEnumerable<ScaleRow> rows) =>
        rows.GroupBy(r => (r.Store, r.ImagesPerNode)).Where(g => g.Count() > 1);
}

internal sealed record ScaleOutput(string PrefillCheck, List<ScaleRow> Results);

public sealed record ScaleRow(
    string Store, int Nodes, int ImagesPerNode, long Entries, double PrefillSeconds, long Events, double IngestSeconds, double EventsPerSecond,
    double LookupP50Ms, double LookupP99Ms, double LookupMaxMs, double ManagedMiB, double BytesPerEntry, double MeanHolders, double MeanDigestRecordBytes,
    double DigestReadP50Ms, double DigestReadP99Ms, double NodeReadsP50Ms, double NodeReadsP99Ms, double LookupGcPauseMs, int LookupGen2Collections, double AllocatedKiBPerLookup);

/// <summary>The growth chart: every quantity relative to the smallest scale, log–log, with linear growth for reference.</summary>
public static class ScaleChart
{
    public static void Draw(IReadOnlyList<ScaleRow> rows, string path)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var plot = new ScottPlot.Plot();
        var minNodes = rows.Min(r => r.Nodes);
        var maxNodes = rows.Max(r => r.Nodes);
        var linear = plot.Add.Scatter(new[] { Math.Log10(minNodes), Math.Log10(maxNodes) }, new[] { 0.0, Math.Log10((double)maxNodes / minNodes) });
        linear.LegendText = "linear in nodes";
        linear.LinePattern = ScottPlot.LinePattern.Dashed;
        linear.Color = ScottPlot.Colors.Gray;
        linear.MarkerSize = 0;
        foreach (var store in ResolverScaleBenchmark.Series(rows))
        {
            var ordered = store.OrderBy(r => r.Nodes).ToList();
            var first = ordered[0];
            var dapr = store.Key.Store == "dapr";
            var name = dapr ? "dapr double" : "memory";
            var xs = ordered.Select(r => Math.Log10(r.Nodes)).ToArray();
            Series(plot, xs, ordered.Select(r => r.ManagedMiB / first.ManagedMiB), $"{name}: memory", dapr);
            Series(plot, xs, ordered.Select(r => r.LookupP50Ms / first.LookupP50Ms), $"{name}: lookup p50", dapr);
            Series(plot, xs, ordered.Select(r => r.LookupP99Ms / first.LookupP99Ms), $"{name}: lookup p99", dapr);
            Series(plot, xs, ordered.Select(r => first.EventsPerSecond / r.EventsPerSecond), $"{name}: time per ingested event", dapr);
        }

        var ticks = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = v => Math.Pow(10, v).ToString("G3", CultureInfo.InvariantCulture),
        };
        plot.Axes.Left.TickGenerator = ticks;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = v => Math.Pow(10, v).ToString("N0", CultureInfo.InvariantCulture),
        };
        plot.Title("Resolver at scale: growth relative to the smallest scale");
        plot.XLabel("nodes");
        plot.YLabel("× the smallest scale (log)");
        plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        plot.SavePng(path, 1000, 650);
    }

    private static void Series(ScottPlot.Plot plot, double[] xs, IEnumerable<double> ratios, string label, bool dashed)
    {
        var ys = ratios.Select(v => Math.Log10(Math.Max(v, 1e-3))).ToArray();
        var s = plot.Add.Scatter(xs, ys);
        s.LegendText = label;
        s.MarkerSize = 7;
        if (dashed)
        {
            s.LinePattern = ScottPlot.LinePattern.Dotted;
        }
    }
}
