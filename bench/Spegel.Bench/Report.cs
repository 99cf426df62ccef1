using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Spegel.Bench;

/// <summary>A target a measurement is held to: <c>≥ value</c> or <c>≤ value</c>.</summary>
public sealed record Target(string Op, double Value)
{
    public static Target AtLeast(double value) => new(">=", value);

    public static Target AtMost(double value) => new("<=", value);

    public bool IsMetBy(double value) => !double.IsNaN(value) && (Op == ">=" ? value >= Value : value <= Value);

    public override string ToString() => (Op == ">=" ? "≥ " : "≤ ") + Report.Format(Value);
}

/// <summary>One quantity measured every round (a throughput, a time, a ratio of two of them, a memory size).</summary>
public sealed class Measurement
{
    public required string Name { get; init; }

    public required string Unit { get; init; }

    public List<double> Rounds { get; init; } = [];

    /// <summary>For a ratio: the measurement above and below the line, measured in the same rounds.</summary>
    public string? Numerator { get; init; }

    public string? Denominator { get; init; }

    public Target? Target { get; init; }

    /// <summary>Per-round side facts (CPU seconds of the server and of the client, request counts).</summary>
    public Dictionary<string, List<double>> Extra { get; init; } = [];

    public double Median => Stats.Median(Rounds);

    public double Min => Rounds.Count == 0 ? double.NaN : Rounds.Min();

    public double Max => Rounds.Count == 0 ? double.NaN : Rounds.Max();

    public bool? Met => Target?.IsMetBy(Median);

    public string Status => Met switch
    {
        true => "met",
        false => "**missed**",
        null => "—",
    };

    public void AddExtra(string key, double value)
    {
        if (!Extra.TryGetValue(key, out var list))
        {
            Extra[key] = list = [];
        }

        list.Add(value);
    }
}

/// <summary>A free-form table (latency percentiles per setting, experiments).</summary>
public sealed class ReportTable
{
    public required string Title { get; init; }

    public required List<string> Headers { get; init; }

    public List<List<string>> Rows { get; init; } = [];
}

public sealed class BenchmarkReport
{
    public required string Id { get; init; }

    public required string Name { get; init; }

    public required string Title { get; init; }

    public required string Issue { get; init; }

    public string Method { get; set; } = string.Empty;

    public List<Measurement> Measurements { get; init; } = [];

    public List<Measurement> Ratios { get; init; } = [];

    public List<ReportTable> Tables { get; init; } = [];

    /// <summary>What limits the numbers, what was found when a target was missed.</summary>
    public List<string> Notes { get; init; } = [];

    public string? Error { get; set; }

    public double Seconds { get; set; }

    /// <summary>Its measurements are all shown in its tables: the summary lists the tables, not the measurements again.</summary>
    public bool SummarizeTablesOnly { get; set; }

    /// <summary>CPU used meanwhile by processes outside the run (other builds, tests), in cores on average.</summary>
    public double OtherProcessesCores { get; set; }

    public Measurement Measure(string name, string unit, Target? target = null)
    {
        var existing = Measurements.FirstOrDefault(m => m.Name == name);
        if (existing is not null)
        {
            return existing;
        }

        var m = new Measurement { Name = name, Unit = unit, Target = target };
        Measurements.Add(m);
        return m;
    }

    /// <summary>Adds the ratio of two measurements round by round (rounds are interleaved, so pairs share conditions).</summary>
    public Measurement Ratio(string name, Measurement numerator, Measurement denominator, Target? target = null)
    {
        ArgumentNullException.ThrowIfNull(numerator);
        ArgumentNullException.ThrowIfNull(denominator);
        var n = Math.Min(numerator.Rounds.Count, denominator.Rounds.Count);
        var ratio = new Measurement
        {
            Name = name,
            Unit = "×",
            Numerator = numerator.Name,
            Denominator = denominator.Name,
            Target = target,
            Rounds = Enumerable.Range(0, n).Select(i => numerator.Rounds[i] / denominator.Rounds[i]).ToList(),
        };
        Ratios.Add(ratio);
        return ratio;
    }
}

public sealed class RunReport
{
    public required string Timestamp { get; init; }

    public required string Mode { get; init; }

    public required string CommandLine { get; init; }

    public required MachineInfo Machine { get; init; }

    public required Dictionary<string, string> Settings { get; init; }

    public List<BenchmarkReport> Benchmarks { get; init; } = [];

    public double Seconds { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(RunReport))]
internal sealed partial class ReportJsonContext : JsonSerializerContext;

/// <summary>Writes a run as <c>bench/results/&lt;timestamp&gt;.md</c> and <c>.json</c>, and the summary in docs/benchmarks.md.</summary>
public static class Report
{
    public const string SummaryStart = "<!-- bench:summary:start (written by bench/Spegel.Bench; do not edit by hand) -->";
    public const string SummaryEnd = "<!-- bench:summary:end -->";

    public static string Format(double value)
    {
        if (double.IsNaN(value))
        {
            return "n/a";
        }

        var abs = Math.Abs(value);
        var format = abs >= 100 ? "0" : abs >= 10 ? "0.0" : abs >= 1 ? "0.00" : "0.000";
        return value.ToString(format, CultureInfo.InvariantCulture);
    }

    public static RunReport Read(string jsonPath) =>
        JsonSerializer.Deserialize(File.ReadAllText(jsonPath), ReportJsonContext.Default.RunReport)
        ?? throw new InvalidDataException($"{jsonPath} holds no run report");

    public static (string Markdown, string Json) Write(RunReport run, string directory)
    {
        ArgumentNullException.ThrowIfNull(run);
        Directory.CreateDirectory(directory);
        var stem = Path.Combine(directory, run.Timestamp);
        var json = stem + ".json";
        var md = stem + ".md";
        File.WriteAllText(json, JsonSerializer.Serialize(run, ReportJsonContext.Default.RunReport));
        File.WriteAllText(md, RenderFull(run));
        return (md, json);
    }

    /// <summary>Replaces the text between the summary markers of <paramref name="docPath"/>; false when the markers are missing.</summary>
    public static bool UpdateSummary(RunReport run, string docPath, string resultsRelativePath)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (!File.Exists(docPath))
        {
            return false;
        }

        var text = File.ReadAllText(docPath);
        var start = text.IndexOf(SummaryStart, StringComparison.Ordinal);
        var end = text.IndexOf(SummaryEnd, StringComparison.Ordinal);
        if (start < 0 || end < start)
        {
            return false;
        }

        var summary = RenderSummary(run, resultsRelativePath);
        var updated = text[..(start + SummaryStart.Length)] + "\n" + summary + text[end..];
        File.WriteAllText(docPath, updated);
        return true;
    }

    public static string RenderSummary(RunReport run, string resultsRelativePath)
    {
        ArgumentNullException.ThrowIfNull(run);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Latest full run: **{run.Timestamp}** ({run.Mode}, {run.Seconds:0} s), `{resultsRelativePath}` (not committed; rerun to get it).");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {run.Machine.OneLine()}");
        sb.AppendLine();
        var noisy = run.Benchmarks.Where(b => b.OtherProcessesCores > 0.2).Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Id} ({b.OtherProcessesCores:0.00} cores)")).ToList();
        sb.AppendLine(noisy.Count == 0
            ? "Other processes used under 0.2 cores on average during every benchmark."
            : $"Other processes competed for the cores during {string.Join(", ", noisy)}: those numbers are noisier.");
        sb.AppendLine();
        sb.AppendLine("| benchmark | ratio or value | median | min–max | target | status |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var b in run.Benchmarks)
        {
            if (b.Error is not null)
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"| {b.Id}. {b.Title} | failed: {Escape(b.Error.Split('\n')[0])} | | | | **failed** |");
                continue;
            }

            foreach (var m in b.Ratios.Concat(b.Measurements.Where(m => m.Target is not null)))
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"| {b.Id}. {b.Title} | {Escape(m.Name)} | {Format(m.Median)} {m.Unit} | {Format(m.Min)}–{Format(m.Max)} | {(m.Target is null ? "—" : m.Target + " " + m.Unit)} | {m.Status} |");
            }
        }

        sb.AppendLine();
        sb.AppendLine("Absolute numbers behind each ratio (medians of the same rounds; this machine only, not claims):");
        sb.AppendLine();
        sb.AppendLine("| benchmark | measurement | median | min–max |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var b in run.Benchmarks.Where(b => b.Error is null && !b.SummarizeTablesOnly))
        {
            foreach (var m in b.Measurements.Where(m => m.Target is null))
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"| {b.Id} | {Escape(m.Name)} | {Format(m.Median)} {m.Unit} | {Format(m.Min)}–{Format(m.Max)} |");
            }
        }

        foreach (var b in run.Benchmarks.Where(b => b.Error is null))
        {
            foreach (var t in b.Tables)
            {
                sb.AppendLine();
                RenderTable(sb, $"{b.Id}. {t.Title}", t);
            }
        }

        return sb.ToString();
    }

    public static string RenderFull(RunReport run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"# Benchmark run {run.Timestamp} ({run.Mode})");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"`{run.CommandLine}`, {run.Seconds:0} s in all.");
        sb.AppendLine();
        sb.AppendLine("## Machine");
        sb.AppendLine();
        foreach (var (k, v) in run.Machine.AsPairs())
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"- {k}: {v}");
        }

        sb.AppendLine();
        sb.AppendLine("## Settings");
        sb.AppendLine();
        foreach (var (k, v) in run.Settings)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"- {k}: {v}");
        }

        foreach (var b in run.Benchmarks)
        {
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"## {b.Id}. {b.Title} (`{b.Name}`, issue {b.Issue}, {b.Seconds:0} s)");
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"Other processes on the machine meanwhile: {b.OtherProcessesCores:0.00} cores on average{(b.OtherProcessesCores > 0.2 ? " (**noisy**: they competed for the same cores)" : string.Empty)}.");
            sb.AppendLine();
            if (b.Method.Length > 0)
            {
                sb.AppendLine(b.Method);
                sb.AppendLine();
            }

            if (b.Error is not null)
            {
                sb.AppendLine("**Failed:**");
                sb.AppendLine();
                sb.AppendLine("```");
                sb.AppendLine(b.Error);
                sb.AppendLine("```");
            }

            if (b.Measurements.Count > 0)
            {
                sb.AppendLine("| measurement | median | min–max | target | status | every round |");
                sb.AppendLine("|---|---|---|---|---|---|");
                foreach (var m in b.Measurements)
                {
                    sb.AppendLine(CultureInfo.InvariantCulture, $"| {Escape(m.Name)} | {Format(m.Median)} {m.Unit} | {Format(m.Min)}–{Format(m.Max)} | {(m.Target is null ? "—" : m.Target + " " + m.Unit)} | {m.Status} | {string.Join(", ", m.Rounds.Select(Format))} |");
                }

                sb.AppendLine();
                foreach (var m in b.Measurements.Where(m => m.Extra.Count > 0))
                {
                    foreach (var (key, values) in m.Extra)
                    {
                        sb.AppendLine(CultureInfo.InvariantCulture, $"- {Escape(m.Name)}, {key}: median {Format(Stats.Median(values))} (every round: {string.Join(", ", values.Select(Format))})");
                    }
                }

                sb.AppendLine();
            }

            if (b.Ratios.Count > 0)
            {
                sb.AppendLine("| ratio | median | min–max | target | status | every round |");
                sb.AppendLine("|---|---|---|---|---|---|");
                foreach (var m in b.Ratios)
                {
                    sb.AppendLine(CultureInfo.InvariantCulture, $"| {Escape(m.Name)} ({Escape(m.Numerator ?? "")} / {Escape(m.Denominator ?? "")}) | {Format(m.Median)}× | {Format(m.Min)}–{Format(m.Max)} | {(m.Target is null ? "—" : m.Target + "×")} | {m.Status} | {string.Join(", ", m.Rounds.Select(Format))} |");
                }

                sb.AppendLine();
            }

            foreach (var t in b.Tables)
            {
                RenderTable(sb, t.Title, t);
                sb.AppendLine();
            }

            foreach (var note in b.Notes)
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
            }
        }

        return sb.ToString();
    }

    private static void RenderTable(StringBuilder sb, string title, ReportTable t)
    {
        sb.AppendLine(CultureInfo.InvariantCulture, $"**{title}**");
        sb.AppendLine();
        sb.AppendLine("| " + string.Join(" | ", t.Headers.Select(Escape)) + " |");
        sb.AppendLine("|" + string.Concat(t.Headers.Select(_ => "---|")));
        foreach (var row in t.Rows)
        {
            sb.AppendLine("| " + string.Join(" | ", row.Select(Escape)) + " |");
        }
    }

    private static string Escape(string s) => s.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
}
