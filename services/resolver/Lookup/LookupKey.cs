using System.Diagnostics.CodeAnalysis;
using Spegel.Core;

namespace Spegel.Resolver.Lookup;

/// <summary>What a lookup asks for: a digest, or a tag (normalised <c>registry/repo:tag</c>).</summary>
public sealed record LookupKey(string Value, bool IsTag)
{
    public const string InvalidKeyMessage =
        "key must be a digest (sha256:<64 hex>) or an image reference with a tag (registry/repository:tag)";

    /// <summary>
    /// Parses a digest, or a reference normalised as containerd names images (<c>nginx:1.27</c> is
    /// <c>docker.io/library/nginx:1.27</c>); a reference pinned by digest looks up the digest.
    /// </summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out LookupKey? key, [NotNullWhen(false)] out string? error)
    {
        key = null;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "key is required: " + InvalidKeyMessage;
            return false;
        }

        if (Digest.TryParse(text, out var digest))
        {
            key = new LookupKey(ContentKey.ForDigest(digest), IsTag: false);
            return true;
        }

        // "sha256:abc" would parse as the image docker.io/library/sha256:abc; it is a mistyped digest.
        if (text.StartsWith(Digest.Sha256 + ":", StringComparison.Ordinal) || text.StartsWith(Digest.Sha512 + ":", StringComparison.Ordinal))
        {
            error = $"'{text}' is not a valid digest: {InvalidKeyMessage}";
            return false;
        }

        if (Reference.TryParse(text, out var reference))
        {
            key = reference.Digest is { } pinned
                ? new LookupKey(ContentKey.ForDigest(pinned), IsTag: false)
                : new LookupKey(ContentKey.ForTag(reference), IsTag: true);
            return true;
        }

        error = $"'{text}' is not valid: {InvalidKeyMessage}";
        return false;
    }
}
