using System.Diagnostics;
using System.Globalization;
using Spegel.Bench;
using Spegel.Bench.Benchmarks;
using Spegel.Bench.Infra;

// dotnet run --project bench/Spegel.Bench -c Release -- [all|blob|peer|pull|head|hedge|memory|kestrel|discovery|fanout|scale ...]
//   [--quick] [--rounds N] [--duration SECONDS] [--client auto|wrk|dotnet] [--wait-quiet SECONDS] [--no-docs|--update-docs]
//   [--results-dir DIR] [--docs FILE]
// dotnet run --project bench/Spegel.Bench -c Release -- --from-json bench/results/<run>.json   (re-render only)
// See bench/README.md and docs/benchmarks.md.
if (args.Length == 4 && args[0] == ServingExperimentServer.Command)
{
    return await ServingExperimentServer.RunAsync(args[1], args[2], args[3] == "slim");
}

Benchmark[] all =
[
    new BlobServingBenchmark(),
    new PeerPathBenchmark(),
    new MirrorPullBenchmark(),
    new HeadLatencyBenchmark(),
    new HedgeDelayBenchmark(),
    new MemoryExperimentsBenchmark(),
    new ServingExperimentsBenchmark(),
    new DiscoveryBenchmark(),
    new FanoutBenchmark(),
    new ResolverScaleBenchmark(),
];

// Re-render a finished run (its .md and the docs summary) from its .json, without measuring anything.
var fromJson = Array.IndexOf(args, "--from-json");
if (fromJson >= 0 && fromJson + 1 < args.Length)
{
    var previous = Report.Read(args[fromJson + 1]);
    foreach (var b in previous.Benchmarks.Where(b => b.Name is "hedge" or "memory"))
    {
        b.SummarizeTablesOnly = true; // older result files predate the flag
    }

    var where = BenchPaths.Discover(previous.Timestamp);
    var (mdPath, _) = Report.Write(previous, where.ResultsDirectory);
    var ok = Report.UpdateSummary(previous, where.BenchmarksDoc, Path.GetRelativePath(where.RepoRoot, mdPath));
    Log.Info($"re-rendered {mdPath}{(ok ? " and the summary in " + where.BenchmarksDoc : string.Empty)}");
    return 0;
}

var names = new List<string>();
string? resultsDir = null;
string? docsPath = null;
var settings = args.Contains("--quick") ? BenchSettings.QuickMode : BenchSettings.Full;
bool? updateDocs = null;
var waitQuiet = TimeSpan.Zero;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--quick":
            break;
        case "--rounds" when i + 1 < args.Length:
            settings = settings with { Rounds = int.Parse(args[++i], CultureInfo.InvariantCulture) };
            break;
        case "--duration" when i + 1 < args.Length:
            settings = settings with { LoadDuration = TimeSpan.FromSeconds(double.Parse(args[++i], CultureInfo.InvariantCulture)) };
            break;
        case "--client" when i + 1 < args.Length:
            settings = settings with { ClientPreference = args[++i] };
            break;
        case "--wait-quiet" when i + 1 < args.Length:
            waitQuiet = TimeSpan.FromSeconds(double.Parse(args[++i], CultureInfo.InvariantCulture));
            break;
        case "--fanout-registry-arg" when i + 1 < args.Length:
            settings = settings with { FanoutRegistryArgs = [.. settings.FanoutRegistryArgs, args[++i]] };
            break;
        case "--results-dir" when i + 1 < args.Length:
            resultsDir = args[++i];
            break;
        case "--docs" when i + 1 < args.Length:
            docsPath = args[++i];
            break;
        case "--no-docs":
            updateDocs = false;
            break;
        case "--update-docs":
            updateDocs = true;
            break;
        case "-h" or "--help" or "help":
            Console.WriteLine("usage: Spegel.Bench [all|" + string.Join('|', all.Select(b => b.Name)) + " ...] [--quick] [--rounds N] [--duration S] [--client auto|wrk|dotnet] [--wait-quiet SECONDS] [--no-docs|--update-docs] [--results-dir DIR] [--docs FILE] [--fanout-registry-arg --Spegel:Key=Value ...] | --from-json RESULT.json");
            foreach (var b in all)
            {
                Console.WriteLine($"  {b.Name,-7} {b.Id}. {b.Title} (issue {b.Issue})");
            }

            return 0;
        default:
            if (args[i].StartsWith('-'))
            {
                Console.Error.WriteLine($"unknown option {args[i]} (see --help)");
                return 2;
            }

            names.Add(args[i]);
            break;
    }
}

// No name: every measure issue 9 asks for (about 15 minutes here). `all` adds the diagnostic experiments F and G.
string[] diagnostics = ["memory", "kestrel"];
var defaults = all.Where(b => !diagnostics.Contains(b.Name)).ToList();
var selected = names.Contains("all") ? all.ToList() : names.Count == 0 ? defaults : all.Where(b => names.Contains(b.Name)).ToList();
var unknown = names.Where(n => n != "all" && all.All(b => b.Name != n)).ToList();
if (unknown.Count > 0 || selected.Count == 0)
{
    Console.Error.WriteLine($"unknown benchmark(s): {string.Join(", ", unknown)}; known: {string.Join(", ", all.Select(b => b.Name))}");
    return 2;
}

// Only a full run of everything speaks for docs/benchmarks.md, unless asked.
updateDocs ??= !settings.Quick && defaults.All(selected.Contains);

var stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
var paths = BenchPaths.Discover(stamp).WithOutputs(resultsDir, docsPath);
paths.SnapshotServices(["Spegel.Registry", "Spegel.Indexer", "Spegel.Resolver"]);
var client = LoadClient.Create(settings.ClientPreference, paths.LogDirectory);
var run = new RunReport
{
    Timestamp = stamp,
    Mode = settings.Quick ? "quick" : "full",
    CommandLine = "Spegel.Bench " + string.Join(' ', args),
    Machine = await MachineInfo.CollectAsync(paths.RepoRoot, client.Description),
    Settings = settings.Describe(),
};
Log.Info($"run {stamp} ({run.Mode}): {string.Join(", ", selected.Select(b => b.Name))}; logs in {paths.LogDirectory}");

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

if (waitQuiet > TimeSpan.Zero)
{
    var cores = await BackgroundLoad.WaitQuietAsync(0.1, waitQuiet, cancel.Token);
    Log.Info(string.Create(CultureInfo.InvariantCulture, $"other processes use {cores:0.00} cores; starting"));
}

var clock = Stopwatch.StartNew();
var failed = false;
await using var background = new BackgroundLoad();
try
{
    await using var cluster = selected.Any(b => b.NeedsCluster)
        ? await Cluster.StartAsync(paths, settings, selected.Any(b => b.NeedsBlobImage), selected.Any(b => b.NeedsPullImage), cancel.Token)
        : null;
    var context = new BenchContext { Paths = paths, Settings = settings, Cluster = cluster!, Client = client };
    foreach (var benchmark in selected)
    {
        var report = new BenchmarkReport { Id = benchmark.Id, Name = benchmark.Name, Title = benchmark.Title, Issue = benchmark.Issue };
        run.Benchmarks.Add(report);
        var started = Stopwatch.StartNew();
        var othersBefore = background.OtherCpuSeconds;
        Log.Info($"{benchmark.Id}. {benchmark.Title}");
        try
        {
            await benchmark.RunAsync(context, report, cancel.Token);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancel.IsCancellationRequested)
        {
            failed = true;
            report.Error = ex.ToString();
            Log.Info($"{benchmark.Id} failed: {ex.Message}");
        }

        report.Seconds = started.Elapsed.TotalSeconds;
        report.OtherProcessesCores = (background.OtherCpuSeconds - othersBefore) / report.Seconds;
        if (report.OtherProcessesCores > 0.2)
        {
            Log.Info(string.Create(CultureInfo.InvariantCulture, $"  {benchmark.Id}: other processes used {report.OtherProcessesCores:0.00} cores on average meanwhile: noisy"));
        }
        foreach (var ratio in report.Ratios.Concat(report.Measurements.Where(m => m.Target is not null)))
        {
            Log.Info(string.Create(CultureInfo.InvariantCulture, $"  {benchmark.Id}: {ratio.Name} = {Report.Format(ratio.Median)} {ratio.Unit} ({Report.Format(ratio.Min)}–{Report.Format(ratio.Max)}) target {ratio.Target?.ToString() ?? "—"}: {ratio.Status}"));
        }
    }
}
catch (Exception ex) when (ex is not OperationCanceledException || !cancel.IsCancellationRequested)
{
    failed = true;
    run.Benchmarks.Add(new BenchmarkReport { Id = "-", Name = "setup", Title = "Cluster setup", Issue = "9", Error = ex.ToString() });
    Log.Info($"setup failed: {ex}");
}

run.Seconds = clock.Elapsed.TotalSeconds;
try
{
    // The services' copied build output is only needed while they run; the logs stay.
    Directory.Delete(Path.Combine(paths.LogDirectory, "bin"), recursive: true);
}
catch (IOException)
{
}

BenchmarkNotes.Annotate(run);
var (md, json) = Report.Write(run, paths.ResultsDirectory);
Log.Info($"wrote {md} and {json}");
if (updateDocs == true)
{
    var relative = Path.GetRelativePath(paths.RepoRoot, md);
    Log.Info(Report.UpdateSummary(run, paths.BenchmarksDoc, relative)
        ? $"updated the summary in {paths.BenchmarksDoc}"
        : $"{paths.BenchmarksDoc} has no summary markers; left alone");
}

Log.Info($"done in {run.Seconds:0} s{(failed ? " with failures" : string.Empty)}");
return failed ? 1 : 0;
