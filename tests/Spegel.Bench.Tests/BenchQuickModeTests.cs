using System.Text.Json;
using System.Text.RegularExpressions;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.Bench.Tests;

/// <summary>
/// <c>Spegel.Bench --quick</c> end to end: the harness starts its cluster, runs every default benchmark and writes a
/// report with every section and its numbers, without touching bench/results or docs/ (a test is not a run to keep).
/// </summary>
public sealed partial class BenchQuickModeTests(ITestOutputHelper output)
{
    /// <summary>The benchmarks a run without names includes (issue 9's measures), by id and command name.</summary>
    private static readonly (string Id, string Name)[] DefaultBenchmarks =
    [
        ("A", "blob"), ("B", "peer"), ("C", "pull"), ("D", "head"), ("E", "hedge"), ("H", "discovery"), ("I", "fanout"), ("J", "scale"),
    ];

    [Fact]
    public async Task QuickRun_TempResultsDir_WritesEverySectionWithNumbersAndLeavesRepositoryAlone()
    {
        var repo = RepoRoot();
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Name;
        var harness = Path.Combine(repo, "artifacts", "bin", "Spegel.Bench", configuration, "Spegel.Bench.dll");
        Assert.True(File.Exists(harness), $"{harness} is not built");
        var realDoc = Path.Combine(repo, "docs", "benchmarks.md");
        var realResults = Path.Combine(repo, "bench", "results");
        var resultsBefore = Directory.Exists(realResults) ? Directory.GetFiles(realResults).ToHashSet() : [];

        var temp = RigDirectory.Create("benchtest");
        try
        {
            var results = Path.Combine(temp, "results");
            var doc = Path.Combine(temp, "benchmarks.md");
            File.Copy(realDoc, doc);
            var started = DateTime.UtcNow;
            var run = await ProcessRunner.RunAsync(
                RequiredTools.Find("dotnet", "dotnet-sdk-10.0"),
                [harness, "--quick", "--results-dir", results, "--docs", doc, "--update-docs"],
                TimeSpan.FromMinutes(4),
                temp);
            output.WriteLine($"Spegel.Bench --quick took {(DateTime.UtcNow - started).TotalSeconds:0} s, exit {run.ExitCode}");
            output.WriteLine(Tail(run.StdErr, 6000));
            Assert.True(run.ExitCode == 0, $"Spegel.Bench --quick failed ({run.ExitCode}):\n{Tail(run.StdErr, 8000)}");

            var json = Assert.Single(Directory.GetFiles(results, "*.json"));
            var md = Assert.Single(Directory.GetFiles(results, "*.md"));
            var stamp = Path.GetFileNameWithoutExtension(json);
            Assert.Equal(stamp, Path.GetFileNameWithoutExtension(md));
            Assert.Matches(StampPattern(), stamp);

            // The .json: machine, settings, and for every benchmark no error and finite numbers in every round.
            using var report = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var root = report.RootElement;
            Assert.Equal("quick", root.GetProperty("mode").GetString());
            Assert.True(root.GetProperty("machine").GetProperty("processors").GetInt32() > 0);
            Assert.NotEmpty(root.GetProperty("settings").EnumerateObject());
            var benchmarks = root.GetProperty("benchmarks").EnumerateArray().ToDictionary(b => b.GetProperty("id").GetString()!);
            var markdown = await File.ReadAllTextAsync(md);
            foreach (var (id, name) in DefaultBenchmarks)
            {
                Assert.True(benchmarks.TryGetValue(id, out var b), $"benchmark {id} ({name}) is missing from {json}");
                Assert.True(b.GetProperty("error").ValueKind == JsonValueKind.Null, $"{id} failed: {b.GetProperty("error")}");
                Assert.Equal(name, b.GetProperty("name").GetString());
                var measurements = b.GetProperty("measurements").EnumerateArray().Concat(b.GetProperty("ratios").EnumerateArray()).ToList();
                Assert.True(measurements.Count > 0, $"{id} measured nothing");
                foreach (var m in measurements)
                {
                    var rounds = m.GetProperty("rounds").EnumerateArray().ToList();
                    Assert.True(rounds.Count > 0, $"{id}: '{m.GetProperty("name")}' has no rounds");
                    Assert.All(rounds, r => Assert.True(r.ValueKind == JsonValueKind.Number && double.IsFinite(r.GetDouble()), $"{id}: '{m.GetProperty("name")}' has a round {r}"));
                }

                // The .md has the section, and its first measurement's median as a number.
                var section = SectionOf(markdown, id);
                Assert.True(section is not null, $"{md} has no section for {id}");
                Assert.Matches(NumberCell(), section);
            }

            // H, I and J carry the numbers issue 9 asks for.
            AssertMeasured(benchmarks["H"], "pull finished → answerable, p99", v => v >= 0);
            AssertMeasured(benchmarks["I"], "upstream bytes, node 1's pull + 8 mirrored pulls, in image copies", v => v > 0);
            AssertMeasured(benchmarks["I"], "upstream bytes in image copies, worst round", v => v > 0);
            AssertMeasured(benchmarks["I"], "resolver: peak RSS", v => v > 1);
            Assert.Contains(benchmarks["J"].GetProperty("measurements").EnumerateArray(), m => m.GetProperty("name").GetString()!.EndsWith("lookup p99", StringComparison.Ordinal));
            var chart = Path.Combine(results, stamp + "-resolver-scale.png");
            Assert.True(File.Exists(chart), $"no chart {chart}");
            var png = await File.ReadAllBytesAsync(chart);
            Assert.True(png.Length > 2048 && png.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "the chart is not a PNG");

            // --update-docs rewrote the summary of the temp copy with this run, and nothing in the repository changed.
            var summary = await File.ReadAllTextAsync(doc);
            Assert.Contains($"**{stamp}** (quick", summary, StringComparison.Ordinal);
            // Not a hash of the real doc: people edit it; what must not happen is this run's summary landing in it.
            Assert.DoesNotContain(stamp, await File.ReadAllTextAsync(realDoc), StringComparison.Ordinal);
            var resultsAfter = Directory.Exists(realResults) ? Directory.GetFiles(realResults).ToHashSet() : [];
            Assert.DoesNotContain(resultsAfter, f => !resultsBefore.Contains(f) && f.Contains(stamp, StringComparison.Ordinal));
        }
        finally
        {
            await RigDirectory.RemoveAsync(temp);
        }
    }

    private static void AssertMeasured(JsonElement benchmark, string name, Func<double, bool> plausible)
    {
        var m = benchmark.GetProperty("measurements").EnumerateArray().FirstOrDefault(x => x.GetProperty("name").GetString() == name);
        Assert.True(m.ValueKind == JsonValueKind.Object, $"{benchmark.GetProperty("id")} has no measurement '{name}'");
        var value = m.GetProperty("rounds")[0].GetDouble();
        Assert.True(plausible(value), $"'{name}' = {value}");
    }

    private static string? SectionOf(string markdown, string id)
    {
        var start = markdown.IndexOf($"\n## {id}. ", StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        var end = markdown.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return end < 0 ? markdown[start..] : markdown[start..end];
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Spegel.Dapr.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException($"Spegel.Dapr.sln not found above {AppContext.BaseDirectory}");
    }

    private static string Tail(string text, int chars) => text.Length <= chars ? text : text[^chars..];

    [GeneratedRegex(@"^\d{8}T\d{6}Z$")]
    private static partial Regex StampPattern();

    /// <summary>A table cell holding a number (a median, a ratio, a percentile).</summary>
    [GeneratedRegex(@"\| -?\d+(\.\d+)?( |×|\|)")]
    private static partial Regex NumberCell();
}
