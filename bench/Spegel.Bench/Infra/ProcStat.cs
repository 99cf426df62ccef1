using System.Globalization;

namespace Spegel.Bench.Infra;

/// <summary>Reads memory and CPU use of processes from /proc.</summary>
public static class ProcStat
{
    // USER_HZ: the unit of utime and stime in /proc/<pid>/stat; 100 on every Linux architecture we run on.
    private const double ClockTicksPerSecond = 100.0;

    public const double MiB = 1024.0 * 1024.0;

    /// <summary>VmRSS and VmHWM (the peak resident set since start) in bytes; null when the process is gone.</summary>
    public static (long Rss, long Hwm)? ReadMemory(int pid) => ReadMemoryDetail(pid) is { } m ? (m.Rss, m.Hwm) : null;

    /// <summary>
    /// The resident set split by kind (anonymous, file-backed, shared memory) and the proportional set size (shared pages
    /// divided among the processes mapping them), in bytes; null when the process is gone.
    /// </summary>
    public static MemoryDetail? ReadMemoryDetail(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/status");
        }
        catch (IOException)
        {
            return null;
        }

        long Field(string name)
        {
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal));
            return line is null ? 0 : ParseKb(line);
        }

        long pss = 0;
        try
        {
            var rollup = File.ReadAllText($"/proc/{pid}/smaps_rollup");
            var line = rollup.Split('\n').FirstOrDefault(l => l.StartsWith("Pss:", StringComparison.Ordinal));
            pss = line is null ? 0 : ParseKb(line);
        }
        catch (IOException)
        {
        }

        return new MemoryDetail(Field("VmRSS"), Field("VmHWM"), Field("RssAnon"), Field("RssFile"), Field("RssShmem"), pss);
    }

    /// <summary>User + system CPU seconds of every process in the process group <paramref name="pgid"/> (a daemon and its workers).</summary>
    public static double GroupCpuSeconds(int pgid)
    {
        double total = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            var name = Path.GetFileName(dir);
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                continue;
            }

            var fields = ReadStatFields(dir);
            if (fields is null || !int.TryParse(fields[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var group) || group != pgid)
            {
                continue;
            }

            total += (double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture)) / ClockTicksPerSecond;
        }

        return total;
    }

    /// <summary>The first process whose command line contains <paramref name="fragment"/> (e.g. a config path only it was given).</summary>
    public static int? FindPid(string fragment)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(fragment, StringComparison.Ordinal))
                {
                    return pid;
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return null;
    }

    /// <summary>User + system CPU seconds of one process.</summary>
    public static double CpuSeconds(int pid)
    {
        var fields = ReadStatFields($"/proc/{pid}");
        return fields is null ? double.NaN : (double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture)) / ClockTicksPerSecond;
    }

    /// <summary>The fields after the command name: [0] is the state, [2] the process group, [11] utime, [12] stime.</summary>
    private static string[]? ReadStatFields(string procDir)
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(procDir, "stat"));
            var close = stat.LastIndexOf(')');
            return close < 0 ? null : stat[(close + 2)..].Split(' ');
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static long ParseKb(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
}

/// <summary>A process's memory in bytes (see <see cref="ProcStat.ReadMemoryDetail"/>).</summary>
public sealed record MemoryDetail(long Rss, long Hwm, long Anon, long File, long Shmem, long Pss)
{
    public string Describe() => string.Create(
        CultureInfo.InvariantCulture,
        $"RSS {Rss / ProcStat.MiB:0.0} MiB = anonymous {Anon / ProcStat.MiB:0.0} + file-backed {File / ProcStat.MiB:0.0} + shared memory {Shmem / ProcStat.MiB:0.0}; PSS {Pss / ProcStat.MiB:0.0} MiB");
}

/// <summary>Samples one process's resident set while a load runs, keeping the highest value seen.</summary>
public sealed class RssSampler : IAsyncDisposable
{
    private readonly int pid;
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;

    public RssSampler(int pid, TimeSpan interval)
    {
        this.pid = pid;
        loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(interval);
            try
            {
                do
                {
                    if (ProcStat.ReadMemory(this.pid) is { } m)
                    {
                        PeakRss = Math.Max(PeakRss, m.Rss);
                        Samples++;
                    }
                }
                while (await timer.WaitForNextTickAsync(stop.Token));
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    public long PeakRss { get; private set; }

    public int Samples { get; private set; }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        await loop;
        stop.Dispose();
    }
}
