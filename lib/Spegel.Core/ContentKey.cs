namespace Spegel.Core;

/// <summary>
/// The keys the resolver maps to nodes: a digest key is the digest string, a tag key is
/// <c>registry/repository:tag</c>. Built here so that the indexer and the registry cannot disagree.
/// </summary>
public static class ContentKey
{
    public static string ForDigest(Digest digest) =>
        digest.IsDefault ? throw new ArgumentException("A default digest has no key.", nameof(digest)) : digest.ToString();

    /// <summary>The tag key, ignoring any digest the reference also pins.</summary>
    public static string ForTag(Reference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return reference.Tag is { } tag
            ? $"{reference.Name}:{tag}"
            : throw new ArgumentException($"'{reference}' has no tag.", nameof(reference));
    }

    /// <summary>The key to look a reference up by: its digest when pinned (immutable), otherwise its tag.</summary>
    public static string ForLookup(Reference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return reference.Digest is { } digest ? ForDigest(digest) : ForTag(reference);
    }
}
