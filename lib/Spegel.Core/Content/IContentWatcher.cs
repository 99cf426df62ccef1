namespace Spegel.Core.Content;

/// <summary>
/// Watches the images a node holds: a snapshot of every image (walked to the blobs really present) and a stream
/// of changes. Containerd is one implementation; <see cref="InMemoryContentWatcher"/> is its twin for tests.
/// </summary>
public interface IContentWatcher
{
    /// <summary>
    /// Image changes from the moment the returned stream is first read. Throws
    /// <see cref="ContentStoreUnavailableException"/> when the connection is lost.
    /// </summary>
    IAsyncEnumerable<ImageChange> WatchAsync(CancellationToken cancellationToken);

    /// <summary>Every image held now, each walked.</summary>
    Task<IReadOnlyList<ImageContent>> ListAsync(CancellationToken cancellationToken);

    /// <summary>One image walked, or null when it is not held (deleted since).</summary>
    Task<ImageContent?> GetAsync(string name, CancellationToken cancellationToken);
}

public enum ImageChangeKind
{
    Created,
    Updated,
    Deleted,
}

/// <summary>An image name was created, re-pointed or deleted.</summary>
public sealed record ImageChange(ImageChangeKind Kind, string Name);

/// <summary>
/// An image as this node holds it: its name, the tag reference when the name is one (<c>registry/repo:tag</c>),
/// the digest its name points to, and every digest of it present in the content store (root included).
/// </summary>
public sealed record ImageContent(string Name, Reference? TagReference, Digest Target, IReadOnlyList<Digest> Digests);
