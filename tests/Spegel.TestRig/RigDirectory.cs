using System.Globalization;
using System.Runtime.InteropServices;

namespace Spegel.TestRig;

/// <summary>
/// A temporary directory owned by one fixture. Removing it first unmounts anything still mounted below it
/// (snapshotter mounts left by a killed containerd). Set SPEGEL_RIG_KEEP=1 to keep directories for debugging.
/// </summary>
/// <remarks>
/// Each directory holds an owner file (<see cref="OwnerFileName"/>: the creating process's pid and its start time
/// from <c>/proc/&lt;pid&gt;/stat</c>). A test host that dies (SIGKILL, a crashed runner) never disposes its
/// fixtures, so the first <see cref="Create"/> in every process reclaims the directories whose owner is gone: it
/// kills what still runs in them (a daemon's working directory is its rig directory), unmounts and deletes them.
/// Other test processes run at the same time: a directory whose owner is alive, or that has no owner file (made by
/// an older rig, or being created this instant), is never touched.
/// </remarks>
public static partial class RigDirectory
{
    private const int SigKill = 9;

    /// <summary>The file in each rig directory naming the process that owns it: <c>&lt;pid&gt; &lt;start time in clock ticks&gt;</c>.</summary>
    public const string OwnerFileName = ".spegel-rig-owner";

    private static readonly Lazy<Task<IReadOnlyList<string>>> FirstSweep = new(() => Task.Run(() => ReclaimStaleAsync()));

    /// <summary>Where rig directories are made: <c>$TMPDIR/spegel-rig</c>, or <c>/tmp/spegel-rig</c> when TMPDIR is long.</summary>
    public static string Root
    {
        get
        {
            // A long TMPDIR would push containerd's socket path past the limit; /tmp is always short.
            var temp = Path.GetTempPath();
            return Path.Combine(temp.Length <= 48 ? temp : "/tmp", "spegel-rig");
        }
    }

    /// <summary>A new empty directory under the temp path with a short name (Unix socket paths are limited to 107 bytes).</summary>
    public static string Create(string prefix)
    {
        var root = Root;
        Directory.CreateDirectory(root);
        SweepOnce();
        var path = Path.Combine(root, $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, OwnerFileName), OwnerRecord(Environment.ProcessId) ?? Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        return path;
    }

    /// <summary>
    /// Reclaims every directory under <paramref name="root"/> (default <see cref="Root"/>) whose owner process is gone
    /// (no such pid, or the pid now belongs to a process that started at another time): kills the processes whose
    /// working directory is inside it, unmounts what is mounted below it and deletes it. Returns the directories
    /// reclaimed. Runs by itself once per process on the first <see cref="Create"/>; safe to run concurrently.
    /// </summary>
    public static async Task<IReadOnlyList<string>> ReclaimStaleAsync(string? root = null)
    {
        root ??= Root;
        var reclaimed = new List<string>();
        if (!Directory.Exists(root))
        {
            return reclaimed;
        }

        foreach (var directory in Directory.EnumerateDirectories(root))
        {
            if (!IsOwnerGone(directory))
            {
                continue;
            }

            try
            {
                await KillProcessesInAsync(directory).ConfigureAwait(false);
                await UnmountBelowAsync(directory).ConfigureAwait(false);
                Directory.Delete(directory, recursive: true);
                reclaimed.Add(directory);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Another process reclaiming the same directory at the same time, or something still busy: the next sweep retries.
            }
        }

        return reclaimed;
    }

    /// <summary>
    /// What an owner file holds for <paramref name="pid"/>: <c>&lt;pid&gt; &lt;start time&gt;</c> (field 22 of
    /// <c>/proc/&lt;pid&gt;/stat</c>, clock ticks after boot), or null when no such process runs.
    /// </summary>
    public static string? OwnerRecord(int pid) =>
        StartTime(pid) is { } start ? string.Create(CultureInfo.InvariantCulture, $"{pid} {start}") : null;

    /// <summary>True when <paramref name="directory"/> has an owner file and the process it names no longer runs.</summary>
    public static bool IsOwnerGone(string directory)
    {
        string text;
        try
        {
            text = File.ReadAllText(Path.Combine(directory, OwnerFileName));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // No owner file: an older rig's directory, or one being created right now. Not ours to judge.
            return false;
        }

        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (fields.Length == 0 || !int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
        {
            // Half-written (the owner is writing it this instant) or damaged: leave it.
            return false;
        }

        if (StartTime(pid) is not { } start)
        {
            return true;
        }

        // The pid runs; it is the owner unless the pid was reused by a process that started at another time.
        return fields.Length > 1 && ulong.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var recorded) && recorded != start;
    }

    public static bool Keep => Environment.GetEnvironmentVariable("SPEGEL_RIG_KEEP") is "1" or "true";

    /// <summary>Unmounts every mount below <paramref name="path"/> (deepest first) and deletes the tree.</summary>
    public static async Task RemoveAsync(string path)
    {
        if (!Directory.Exists(path))
        {
            return;
        }

        await UnmountBelowAsync(path).ConfigureAwait(false);
        if (Keep)
        {
            return;
        }

        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
            // One retry: a daemon that was just killed may still have been writing a file.
            await Task.Delay(100).ConfigureAwait(false);
            Directory.Delete(path, recursive: true);
        }
    }

    /// <summary>Mount points at or below <paramref name="path"/>, read from /proc/self/mountinfo.</summary>
    public static IReadOnlyList<string> MountsBelow(string path)
    {
        var prefix = Path.GetFullPath(path).TrimEnd('/');
        var mounts = new List<string>();
        if (!File.Exists("/proc/self/mountinfo"))
        {
            return mounts;
        }

        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length < 5)
            {
                continue;
            }

            var mountPoint = Unescape(fields[4]);
            if (mountPoint == prefix || mountPoint.StartsWith(prefix + "/", StringComparison.Ordinal))
            {
                mounts.Add(mountPoint);
            }
        }

        return mounts;
    }

    private static void SweepOnce()
    {
        if (Keep)
        {
            // Kept for debugging: then a dead run's directories are kept as well.
            return;
        }

        try
        {
            // Sync over async once per process, before the first directory: the sweep only runs umount and deletes.
            FirstSweep.Value.GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or MissingToolException)
        {
            // Reclaiming others' leftovers must never fail this process's tests.
        }
    }

    /// <summary>Field 22 of <c>/proc/&lt;pid&gt;/stat</c> (after the parenthesised command name, which may hold spaces).</summary>
    private static ulong? StartTime(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var fields = stat[(stat.LastIndexOf(')') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);

        // fields[0] is field 3 (state); the start time is field 22.
        return fields.Length > 19 && ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start) ? start : null;
    }

    /// <summary>SIGKILLs every process whose working directory is <paramref name="directory"/> or below it: a dead owner's orphaned daemons.</summary>
    private static async Task KillProcessesInAsync(string directory)
    {
        var prefix = Path.GetFullPath(directory).TrimEnd('/');
        var killed = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            string? cwd;
            try
            {
                cwd = new DirectoryInfo(Path.Combine(entry, "cwd")).LinkTarget;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            if (cwd is not null && (cwd == prefix || cwd.StartsWith(prefix + "/", StringComparison.Ordinal)) && Kill(pid, SigKill) == 0)
            {
                killed.Add(pid);
            }
        }

        // Give them a moment to go, so that their mounts and open files are released before the unmount.
        for (var i = 0; i < 50 && killed.Any(p => Directory.Exists($"/proc/{p.ToString(CultureInfo.InvariantCulture)}")); i++)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    private static async Task UnmountBelowAsync(string path)
    {
        foreach (var mount in MountsBelow(path).OrderByDescending(m => m.Length))
        {
            // Lazy unmount: a mount that is still busy detaches now and goes away when released.
            await ProcessRunner.RunAsync(RequiredTools.Umount, ["-l", mount], TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
    }

    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var builder = new System.Text.StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && int.TryParse(field.AsSpan(i + 1, 3), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                builder.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                builder.Append(field[i]);
            }
        }

        return builder.ToString();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
