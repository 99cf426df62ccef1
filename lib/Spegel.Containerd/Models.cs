using Spegel.Core;

namespace Spegel.Containerd;

/// <summary>An image record in containerd's metadata store: a name pointing at a root descriptor.</summary>
public sealed record ContainerdImage(
    string Name,
    Descriptor Target,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt);

/// <summary>What containerd knows about one committed blob in the current namespace.</summary>
public sealed record ContentInfo(
    Digest Digest,
    long Size,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    IReadOnlyDictionary<string, string> Labels);

public enum ImageEventType
{
    Create,
    Update,
    Delete,
}

/// <summary>An image was created, updated (re-tagged to a new target) or deleted in the watched namespace.</summary>
public sealed record ImageEvent(ImageEventType Type, string Name, DateTimeOffset Timestamp);
