using System.Buffers;
using System.Security.Cryptography;
using Spegel.Core;

namespace Spegel.Containerd.Tests;

internal static class Hashing
{
    /// <summary>sha256 of a stream, read in pooled 64 KiB pieces (never the whole blob in memory). Returns the digest and the byte count.</summary>
    public static async Task<(Digest Digest, long Length)> Sha256Async(Stream stream, CancellationToken ct = default)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        long length = 0;
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer.AsMemory(), ct)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                length += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return (Digest.FromSha256Bytes(hash.GetCurrentHash()), length);
    }

    public static async Task<(Digest Digest, long Length)> Sha256OfFileAsync(string path, CancellationToken ct = default)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, useAsync: true);
        return await Sha256Async(file, ct);
    }
}
