using System.Globalization;

namespace Spegel.EndToEnd.Tests.Support;

/// <summary>
/// A process's I/O counters from <c>/proc/&lt;pid&gt;/io</c>. <c>rchar</c> counts bytes read through read(2),
/// pread(2) and sendfile(2) — page-cache hits included — so a registry serving a blob from its content directory
/// shows it there while the request is still running (and not yet in its request log). Socket sends are not
/// counted anywhere in this file, which is why the reading side is watched.
/// </summary>
internal static class ProcIo
{
    /// <summary>Bytes the process has read so far, or null when it is gone.</summary>
    public static long? ReadBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/io"))
            {
                if (line.StartsWith("rchar:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        return null;
    }
}
