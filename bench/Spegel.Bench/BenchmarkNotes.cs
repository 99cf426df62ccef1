using System.Globalization;

namespace Spegel.Bench;

/// <summary>
/// Facts derived from a run's own numbers, appended to each benchmark's notes (what each side cost in CPU, what
/// share of the machine that is), so a result file explains itself. Interpretation lives in docs/benchmarks.md.
/// </summary>
public static class BenchmarkNotes
{
    public static void Annotate(RunReport run)
    {
        ArgumentNullException.ThrowIfNull(run);
        foreach (var b in run.Benchmarks.Where(b => b.Error is null))
        {
            foreach (var m in b.Measurements.Where(m => m.Extra.Count > 0 && m.Unit == "MiB/s"))
            {
                var costs = string.Join(
                    ", ",
                    m.Extra.Where(e => e.Key.Contains("CPU", StringComparison.Ordinal))
                        .Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Key} {Report.Format(Stats.Median(e.Value))}")));
                if (costs.Length == 0)
                {
                    continue;
                }

                // CPU-seconds per GiB × GiB per second = cores busy; the machine has Processors of them.
                var gibPerSecond = m.Median / 1024;
                var cores = m.Extra.Where(e => e.Key.Contains("CPU", StringComparison.Ordinal)).Sum(e => Stats.Median(e.Value)) * gibPerSecond;
                b.Notes.Add(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{m.Name}: {costs}; at {Report.Format(m.Median)} MiB/s the measured processes keep {cores:0.00} of {run.Machine.Processors} cores busy."));
            }

            foreach (var m in b.Ratios.Concat(b.Measurements).Where(m => m.Met == false))
            {
                b.Notes.Add(string.Create(CultureInfo.InvariantCulture, $"Target missed: {m.Name} = {Report.Format(m.Median)} {m.Unit}, target {m.Target} {m.Unit} (see docs/benchmarks.md for why)."));
            }
        }
    }
}
