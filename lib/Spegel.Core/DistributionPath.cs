using System.Diagnostics.CodeAnalysis;
using static Spegel.Core.ReferenceGrammar;

namespace Spegel.Core;

public enum DistributionPathKind
{
    /// <summary><c>/v2/</c>, the API version check.</summary>
    Root,

    /// <summary><c>/v2/&lt;name&gt;/manifests/&lt;tag|digest&gt;</c>.</summary>
    Manifest,

    /// <summary><c>/v2/&lt;name&gt;/blobs/&lt;digest&gt;</c>.</summary>
    Blob,
}

/// <summary>Why a request path was refused; callers map these to HTTP status and OCI error codes.</summary>
public enum DistributionPathError
{
    None,

    /// <summary>Not a route this read-only mirror serves (tags list, uploads, trailing slash, other prefixes).</summary>
    NotFound,

    NameInvalid,

    DigestInvalid,

    TagInvalid,

    /// <summary>A manifest asked for by tag without <c>ns</c>: the tag cannot be tied to a registry.</summary>
    TagWithoutNamespace,

    /// <summary>The <c>ns</c> query value is not a registry host.</summary>
    NamespaceInvalid,
}

/// <summary>
/// A parsed OCI distribution read request as containerd sends it to a mirror:
/// the path plus the <c>ns</c> query value naming the upstream registry.
/// </summary>
public sealed record DistributionPath
{
    private const string Prefix = "/v2/";
    private const string ManifestsSegment = "manifests";
    private const string BlobsSegment = "blobs";

    private static readonly DistributionPath RootPath = new(DistributionPathKind.Root, null, null, null, null, null);

    private DistributionPath(DistributionPathKind kind, string? name, string? registry, string? tag, Digest? digest, Reference? reference)
    {
        Kind = kind;
        Name = name;
        Registry = registry;
        Tag = tag;
        Digest = digest;
        Reference = reference;
    }

    public DistributionPathKind Kind { get; }

    /// <summary>The repository exactly as requested (no <c>library/</c> added); null for <see cref="DistributionPathKind.Root"/>.</summary>
    public string? Name { get; }

    /// <summary>The registry from <c>ns</c>, with <c>index.docker.io</c> normalised to <c>docker.io</c>; null without <c>ns</c>.</summary>
    public string? Registry { get; }

    /// <summary>Set for a manifest asked for by tag.</summary>
    public string? Tag { get; }

    /// <summary>Set for a blob, or a manifest asked for by digest.</summary>
    public Digest? Digest { get; }

    /// <summary>The normalised image reference, when the registry is known.</summary>
    public Reference? Reference { get; }

    /// <summary>
    /// Parses an already-decoded request path and the <c>ns</c> query value (null when absent).
    /// Because the path is already decoded, any remaining <c>%</c> is refused rather than decoded again.
    /// </summary>
    public static bool TryParse(
        string? path,
        string? ns,
        [NotNullWhen(true)] out DistributionPath? result,
        out DistributionPathError error)
    {
        error = Parse(path, ns, out result);
        return error == DistributionPathError.None;
    }

    /// <summary>The request path, e.g. <c>/v2/library/nginx/manifests/1.27</c>.</summary>
    public string ToPath() => Kind switch
    {
        DistributionPathKind.Root => Prefix,
        DistributionPathKind.Manifest => $"{Prefix}{Name}/{ManifestsSegment}/{(Digest is { } d ? d.ToString() : Tag)}",
        _ => $"{Prefix}{Name}/{BlobsSegment}/{Digest}",
    };

    /// <summary>The request path with <c>?ns=</c> when the registry is known, as a peer needs it for tags.</summary>
    public string ToPathAndQuery() => Registry is null ? ToPath() : $"{ToPath()}?ns={Uri.EscapeDataString(Registry)}";

    public override string ToString() => ToPathAndQuery();

    private static DistributionPathError Parse(string? path, string? ns, out DistributionPath? result)
    {
        result = null;
        if (path is "/v2" or Prefix)
        {
            result = RootPath;
            return DistributionPathError.None;
        }

        if (path is null || !path.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return DistributionPathError.NotFound;
        }

        // Route shape first: the segment before last says what is asked for, everything between
        // /v2/ and it is the name (which may itself contain "manifests" or "blobs" components).
        var rest = path.AsSpan(Prefix.Length);
        var lastSlash = rest.LastIndexOf('/');
        if (lastSlash < 0)
        {
            return DistributionPathError.NotFound;
        }

        var head = rest[..lastSlash];
        var target = rest[(lastSlash + 1)..].ToString();
        var kindSlash = head.LastIndexOf('/');
        var kindSegment = head[(kindSlash + 1)..];
        DistributionPathKind kind;
        if (kindSegment.SequenceEqual(ManifestsSegment))
        {
            kind = DistributionPathKind.Manifest;
        }
        else if (kindSegment.SequenceEqual(BlobsSegment))
        {
            kind = DistributionPathKind.Blob;
        }
        else
        {
            return DistributionPathError.NotFound;
        }

        if (target.Length == 0)
        {
            return DistributionPathError.NotFound;
        }

        var name = kindSlash < 0 ? string.Empty : head[..kindSlash].ToString();
        if (!IsValidRepository(name))
        {
            return DistributionPathError.NameInvalid;
        }

        string? registry = null;
        if (ns is not null)
        {
            if (!IsValidHost(ns) || !LooksLikeHost(ns))
            {
                return DistributionPathError.NamespaceInvalid;
            }

            registry = NormalizeHost(ns);
        }

        if (name.Length > MaxNameLength || (registry is not null && registry.Length + 1 + name.Length > MaxNameLength))
        {
            return DistributionPathError.NameInvalid;
        }

        string? tag = null;
        Digest? digest = null;
        if (Core.Digest.TryParse(target, out var parsed))
        {
            digest = parsed;
        }
        else if (kind == DistributionPathKind.Blob || target.Contains(':', StringComparison.Ordinal))
        {
            // Blobs are content-addressed only; a colon in a manifest reference means a digest was meant.
            return DistributionPathError.DigestInvalid;
        }
        else if (!IsValidTag(target))
        {
            return DistributionPathError.TagInvalid;
        }
        else if (registry is null)
        {
            return DistributionPathError.TagWithoutNamespace;
        }
        else
        {
            tag = target;
        }

        Reference? reference = null;
        if (registry is not null && !Reference.TryCreate(registry, name, tag, digest, out reference))
        {
            // Only the length can still fail: library/ is added to single-component Docker Hub names.
            return DistributionPathError.NameInvalid;
        }

        result = new DistributionPath(kind, name, registry, tag, digest, reference);
        return DistributionPathError.None;
    }
}
