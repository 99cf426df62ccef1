namespace Spegel.Core.Content;

/// <summary>
/// The content this node holds (containerd's image and content stores), as the registry serves it.
/// Not-found is a <c>null</c> result, never an exception; an unreachable store throws
/// <see cref="ContentStoreUnavailableException"/>.
/// </summary>
public interface ILocalContent
{
    /// <summary>The descriptor a tag reference (<c>registry/repo:tag</c>) points to on this node, or null.</summary>
    Task<Descriptor?> ResolveTagAsync(Reference reference, CancellationToken cancellationToken);

    /// <summary>Size and kind of a blob held on this node, or null when it is not here.</summary>
    Task<LocalContentInfo?> GetInfoAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>All bytes of a small blob (a manifest), or null when it is not here. Throws when larger than <paramref name="maxBytes"/>.</summary>
    Task<byte[]?> ReadAllAsync(Digest digest, long maxBytes, CancellationToken cancellationToken);

    /// <summary>The blob's file when the content directory is readable: the fast path (the kernel copies it).</summary>
    string? GetFilePath(Digest digest);

    /// <summary>A forward-only stream of the blob from <paramref name="offset"/>; the slow path when there is no file.</summary>
    Stream OpenRead(Digest digest, long offset);
}

/// <summary>What the node knows about a blob it holds.</summary>
/// <param name="IsManifest">True when the store knows the blob is a manifest or index, false when it knows it is not, null when it cannot tell.</param>
/// <param name="IsPrivate">True when the blob came only from private repositories (<see cref="PrivateContentPolicy"/>): never served to peers.</param>
public sealed record LocalContentInfo(Digest Digest, long Size, bool? IsManifest, bool IsPrivate = false);

/// <summary>The local content store (containerd) cannot be reached; the message says where and why.</summary>
public sealed class ContentStoreUnavailableException : Exception
{
    public ContentStoreUnavailableException()
    {
    }

    public ContentStoreUnavailableException(string message)
        : base(message)
    {
    }

    public ContentStoreUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
