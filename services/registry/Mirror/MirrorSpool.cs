using Microsoft.Extensions.Options;
using Spegel.Core;

namespace Spegel.Registry.Mirror;

/// <summary>
/// Where blobs too large to hold in memory are verified before a byte is sent (<c>Spegel:MirrorSpoolPath</c>).
/// Bounded twice: by <see cref="MirrorOptions.MirrorSpoolLimitBytes"/> across all requests (an emptyDir with a
/// sizeLimit evicts the pod when it is exceeded, and statfs cannot see that limit) and by the free space of the
/// file system. When either says no, the blob streams as before (verified as it flows, aborted on a mismatch) and
/// one line says why. Every spool file is unlinked right after it is opened, so a killed process leaves nothing.
/// </summary>
public sealed partial class MirrorSpool(IOptions<MirrorOptions> options, ILogger<MirrorSpool> logger)
{
    // Free space left for everything else on the file system (containerd's content may share it).
    private const long FreeSpaceMargin = 256L * 1024 * 1024;

    private readonly string path = options.Value.MirrorSpoolPath;
    private readonly long limit = options.Value.MirrorSpoolLimitBytes;
    private long reserved;
    private int prepared;
    private int warnedUnusable;

    /// <summary>Whether blobs are spooled at all (a path is configured).</summary>
    public bool Enabled => path.Length > 0 && limit > 0;

    /// <summary>Bytes reserved by spool files open right now (for tests and metrics).</summary>
    public long ReservedBytes => Interlocked.Read(ref reserved);

    internal SpoolBody? TryCreate(long length, Digest expected)
    {
        if (!Enabled)
        {
            return null;
        }

        if (!TryReserve(length))
        {
            LogSpoolFull(expected.ToString(), length, ReservedBytes, limit);
            return null;
        }

        var reservation = new Reservation(this, length);
        try
        {
            Prepare();
            var free = new DriveInfo(path).AvailableFreeSpace;
            if (free < length + FreeSpaceMargin)
            {
                LogDiskFull(expected.ToString(), length, free, path);
                reservation.Dispose();
                return null;
            }

            var file = Path.Combine(path, $"{expected.Hex[..16]}-{Guid.NewGuid():N}.spool");
            var handle = File.OpenHandle(file, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            try
            {
                File.Delete(file);
            }
            catch
            {
                handle.Dispose();
                throw;
            }

            return new SpoolBody(length, expected, handle, reservation);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            reservation.Dispose();
            if (Interlocked.Exchange(ref warnedUnusable, 1) == 0)
            {
                LogUnusable(path, ex.Message);
            }

            return null;
        }
    }

    private bool TryReserve(long length)
    {
        while (true)
        {
            var current = Interlocked.Read(ref reserved);
            if (current + length > limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref reserved, current + length, current) == current)
            {
                return true;
            }
        }
    }

    /// <summary>Creates the directory once and removes files a process killed between create and unlink left.</summary>
    private void Prepare()
    {
        if (Volatile.Read(ref prepared) != 0)
        {
            return;
        }

        Directory.CreateDirectory(path);
        if (Interlocked.Exchange(ref prepared, 1) == 0)
        {
            foreach (var stale in Directory.EnumerateFiles(path, "*.spool"))
            {
                File.Delete(stale);
            }
        }
    }

    private sealed class Reservation(MirrorSpool owner, long length) : IDisposable
    {
        private int released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
            {
                Interlocked.Add(ref owner.reserved, -length);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "mirror spool budget used up, streaming the blob instead {digest} {bytes} {reserved} {limit}")]
    private partial void LogSpoolFull(string digest, long bytes, long reserved, long limit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "mirror spool file system too full, streaming the blob instead {digest} {bytes} {free} {path}")]
    private partial void LogDiskFull(string digest, long bytes, long free, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "mirror spool directory unusable, large blobs stream instead {path} {error}")]
    private partial void LogUnusable(string path, string error);
}
