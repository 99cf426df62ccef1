using System.Collections.Concurrent;

namespace Spegel.Core.Content;

/// <summary>The in-memory twin of <see cref="ILocalContent"/>, for tests and demos without containerd.</summary>
public sealed class InMemoryLocalContent : ILocalContent
{
    private readonly ConcurrentDictionary<string, Descriptor> tags = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Digest, (byte[] Bytes, bool IsManifest, bool IsPrivate)> blobs = new();

    /// <summary>Stores a blob and returns its digest.</summary>
    public Digest Add(byte[] bytes, bool isManifest = false, bool isPrivate = false)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var digest = Digest.ComputeSha256(bytes);
        blobs[digest] = (bytes, isManifest, isPrivate);
        return digest;
    }

    public void Tag(Reference reference, Descriptor target)
    {
        ArgumentNullException.ThrowIfNull(reference);
        tags[reference.ToString()] = target;
    }

    public bool Remove(Digest digest) => blobs.TryRemove(digest, out _);

    public Task<Descriptor?> ResolveTagAsync(Reference reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return Task.FromResult(tags.TryGetValue(reference.ToString(), out var d) ? d : null);
    }

    public Task<LocalContentInfo?> GetInfoAsync(Digest digest, CancellationToken cancellationToken) =>
        Task.FromResult(blobs.TryGetValue(digest, out var b) ? new LocalContentInfo(digest, b.Bytes.LongLength, b.IsManifest, b.IsPrivate) : null);

    public Task<byte[]?> ReadAllAsync(Digest digest, long maxBytes, CancellationToken cancellationToken)
    {
        if (!blobs.TryGetValue(digest, out var b))
        {
            return Task.FromResult<byte[]?>(null);
        }

        return b.Bytes.LongLength > maxBytes
            ? throw new InvalidDataException($"{digest} is {b.Bytes.LongLength} bytes, more than {maxBytes}.")
            : Task.FromResult<byte[]?>(b.Bytes);
    }

    public string? GetFilePath(Digest digest) => null;

    public Stream OpenRead(Digest digest, long offset)
    {
        if (!blobs.TryGetValue(digest, out var b))
        {
            throw new FileNotFoundException($"{digest} is not held.");
        }

        return new MemoryStream(b.Bytes, (int)Math.Min(offset, b.Bytes.Length), (int)Math.Max(0, b.Bytes.Length - offset), writable: false);
    }
}
