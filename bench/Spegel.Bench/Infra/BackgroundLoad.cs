using System.Globalization;

namespace Spegel.Bench.Infra;

/// <summary>
/// Watches how much CPU processes outside this run use (other builds or tests on the same machine), since every
/// number here shares two cores with them. Samples once a second: the CPU seconds gained by each live process that is
/// not this harness or one of its descendants.
/// </summary>
public sealed class BackgroundLoad : IAsyncDisposable
{
    private const double ClockTicksPerSecond = 100.0;

    private readonly int self = Environment.ProcessId;
    private readonly Dictionary<int, double> last = [];
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;
    private readonly Lock gate = new();
    private double otherCpuSeconds;

    public BackgroundLoad()
    {
        Sample(record: false);
        loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            try
            {
                while (await timer.WaitForNextTickAsync(stop.Token))
                {
                    Sample(record: true);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    /// <summary>CPU seconds used by other processes since the monitor started.</summary>
    public double OtherCpuSeconds
    {
        get
        {
            lock (gate)
            {
                return otherCpuSeconds;
            }
        }
    }

    /// <summary>Measures other processes' CPU over <paramref name="window"/>, in cores (1.0 = one core fully busy).</summary>
    public static async Task<double> MeasureCoresAsync(TimeSpan window, CancellationToken ct)
    {
        await using var probe = new BackgroundLoad();
        await Task.Delay(window, ct);
        return probe.OtherCpuSeconds / window.TotalSeconds;
    }

    /// <summary>Waits until other processes use less than <paramref name="maxCores"/> over a 3-second window, at most <paramref name="timeout"/>.</summary>
    public static async Task<double> WaitQuietAsync(double maxCores, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var cores = await MeasureCoresAsync(TimeSpan.FromSeconds(3), ct);
            if (cores <= maxCores || DateTime.UtcNow >= deadline)
            {
                return cores;
            }

            Log.Info(string.Create(CultureInfo.InvariantCulture, $"other processes use {cores:0.00} cores; waiting for a quieter machine (until {deadline:HH:mm:ss} UTC)"));
        }
    }

    private void Sample(bool record)
    {
        var parents = new Dictionary<int, int>();
        var cpu = new Dictionary<int, double>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1], CultureInfo.InvariantCulture);
                cpu[pid] = (double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture)) / ClockTicksPerSecond;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
            }
        }

        bool IsOurs(int pid)
        {
            for (var p = pid; p > 1 && parents.TryGetValue(p, out var parent); p = parent)
            {
                if (p == self)
                {
                    return true;
                }
            }

            return false;
        }

        double gained = 0;
        foreach (var (pid, seconds) in cpu)
        {
            // Ours, and kernel threads (ksoftirqd does part of our own loopback traffic's work).
            if (IsOurs(pid) || pid == 2 || (parents.TryGetValue(pid, out var parent) && parent == 2))
            {
                continue;
            }

            // A process seen for the first time counts from zero only if it appeared after the first sample.
            gained += last.TryGetValue(pid, out var before) ? Math.Max(0, seconds - before) : (record ? seconds : 0);
        }

        last.Clear();
        foreach (var (pid, seconds) in cpu)
        {
            last[pid] = seconds;
        }

        if (record)
        {
            lock (gate)
            {
                otherCpuSeconds += gained;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        await loop;
        stop.Dispose();
    }
}
