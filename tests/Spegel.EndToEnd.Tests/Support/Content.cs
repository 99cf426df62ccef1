using System.Buffers;
using System.Security.Cryptography;
using Spegel.Core;
using Spegel.TestRig;

namespace Spegel.EndToEnd.Tests.Support;

/// <summary>What a node holds, checked on disk: every blob present and hashing to its digest.</summary>
internal static class Content
{
    /// <summary>sha256 of a file, read in pooled pieces (a 100 MiB layer never sits in memory).</summary>
    public static async Task<Digest> Sha256OfFileAsync(string path, CancellationToken ct = default)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, useAsync: true);
        return await Sha256Async(file, ct);
    }

    public static async Task<Digest> Sha256Async(Stream stream, CancellationToken ct = default)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(256 * 1024);
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer.AsMemory(), ct)) > 0)
            {
                hash.AppendData(buffer, 0, n);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return Digest.FromSha256Bytes(hash.GetCurrentHash());
    }

    /// <summary>Asserts that <paramref name="containerd"/> holds every blob in <paramref name="blobs"/>, each file of the right size and hashing to its digest.</summary>
    public static async Task AssertHoldsAsync(ContainerdInstance containerd, IEnumerable<Descriptor> blobs, string who)
    {
        foreach (var blob in blobs)
        {
            var path = containerd.BlobPath(blob.Digest);
            Assert.True(File.Exists(path), $"{who} does not hold {blob.MediaType} {blob.Digest}");
            Assert.Equal(blob.Size, new FileInfo(path).Length);
            Assert.Equal(blob.Digest, await Sha256OfFileAsync(path));
        }
    }

    /// <summary>The keys the resolver should list a node under after it pulled <paramref name="image"/>: every native digest and the tag.</summary>
    public static IReadOnlyList<string> Keys(TestImage image) =>
        [.. image.NativeBlobs.Select(b => ContentKey.ForDigest(b.Digest)), TagKey(image)];

    public static string TagKey(TestImage image) => ContentKey.ForTag(Reference.Parse(image.Reference));

    /// <summary>Bytes in containerd's ingest directory: what a pull in progress has written so far.</summary>
    public static long IngestBytes(ContainerdInstance containerd)
    {
        var ingest = Path.Combine(containerd.ContentPath, "ingest");
        if (!Directory.Exists(ingest))
        {
            return 0;
        }

        long total = 0;
        try
        {
            foreach (var data in Directory.EnumerateFiles(ingest, "data", SearchOption.AllDirectories))
            {
                try
                {
                    total += new FileInfo(data).Length;
                }
                catch (FileNotFoundException)
                {
                    // Committed between listing and stat.
                }
            }
        }
        catch (DirectoryNotFoundException)
        {
        }

        return total;
    }
}
