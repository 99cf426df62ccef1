using System.Globalization;

namespace Spegel.TestRig;

/// <summary>
/// A temporary directory owned by one fixture. Removing it first unmounts anything still mounted below it
/// (snapshotter mounts left by a killed containerd). Set SPEGEL_RIG_KEEP=1 to keep directories for debugging.
/// </summary>
public static class RigDirectory
{
    /// <summary>A new empty directory under the temp path with a short name (Unix socket paths are limited to 107 bytes).</summary>
    public static string Create(string prefix)
    {
        // A long TMPDIR would push containerd's socket path past the limit; /tmp is always short.
        var temp = Path.GetTempPath();
        var root = Path.Combine(temp.Length <= 48 ? temp : "/tmp", "spegel-rig");
        Directory.CreateDirectory(root);
        var path = Path.Combine(root, $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}");
        Directory.CreateDirectory(path);
        return path;
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
}
