using System.Diagnostics.CodeAnalysis;
using static Spegel.Core.ReferenceGrammar;

namespace Spegel.Core;

/// <summary>
/// An image reference, <c>registry/repository[:tag][@digest]</c>, normalised the way containerd
/// stores image names (distribution/reference's ParseNormalizedNamed + TagNameOnly):
/// <c>nginx</c> is <c>docker.io/library/nginx:latest</c>, <c>index.docker.io</c> is <c>docker.io</c>.
/// An instance is always valid and normalised, so <c>Parse(r.ToString())</c> equals <c>r</c>.
/// </summary>
public sealed record Reference
{
    private readonly string _value;

    private Reference(string registry, string repository, string? tag, Digest? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
        Name = $"{registry}/{repository}";
        _value = Name + (tag is null ? string.Empty : ":" + tag) + (digest is { } d ? "@" + d : string.Empty);
    }

    /// <summary>The registry host with optional port, e.g. <c>docker.io</c> or <c>localhost:5000</c>.</summary>
    public string Registry { get; }

    /// <summary>The repository path, e.g. <c>library/nginx</c>.</summary>
    public string Repository { get; }

    /// <summary>Null only when the reference is pinned by digest alone.</summary>
    public string? Tag { get; }

    public Digest? Digest { get; }

    /// <summary><c>registry/repository</c>.</summary>
    public string Name { get; }

    /// <summary>
    /// Parses a familiar or fully qualified reference. A bare digest (<c>sha256:…</c>, the image-ID name
    /// CRI also stores) and a bare 64-hex string are rejected: they are identifiers, not names.
    /// </summary>
    public static bool TryParse([NotNullWhen(true)] string? value, [NotNullWhen(true)] out Reference? reference)
    {
        reference = null;
        if (string.IsNullOrEmpty(value) || Core.Digest.TryParse(value, out _) || IsBareSha256Hex(value))
        {
            return false;
        }

        var name = value.AsSpan();
        Digest? digest = null;
        var at = name.IndexOf('@');
        if (at >= 0)
        {
            if (!Core.Digest.TryParse(value[(at + 1)..], out var parsed))
            {
                return false;
            }

            digest = parsed;
            name = name[..at];
        }

        // The tag separator is the last colon after the last slash; earlier colons belong to a host port.
        string? tag = null;
        var colon = name.LastIndexOf(':');
        if (colon > name.LastIndexOf('/'))
        {
            tag = name[(colon + 1)..].ToString();
            name = name[..colon];
        }

        var slash = name.IndexOf('/');
        string registry;
        string repository;
        if (slash > 0 && LooksLikeHost(name[..slash]))
        {
            registry = name[..slash].ToString();
            repository = name[(slash + 1)..].ToString();
        }
        else
        {
            registry = DockerHub;
            repository = name.ToString();
        }

        return TryCreate(registry, repository, tag, digest, out reference);
    }

    public static Reference Parse(string value) =>
        TryParse(value, out var reference)
            ? reference
            : throw new FormatException($"'{value}' is not a valid image reference (expected [registry/]repository[:tag][@digest]).");

    /// <summary>
    /// Builds a reference from its parts with the same validation and normalisation as
    /// <see cref="TryParse"/>; with neither tag nor digest the tag is <c>latest</c>.
    /// The registry must be recognisable as a host when written out (contain '.' or ':', or be
    /// <c>localhost</c>), otherwise the string form would parse back as a Docker Hub namespace.
    /// </summary>
    public static bool TryCreate(string? registry, string? repository, string? tag, Digest? digest, [NotNullWhen(true)] out Reference? reference)
    {
        reference = null;
        if (registry is null || repository is null || !IsValidHost(registry) || !LooksLikeHost(registry))
        {
            return false;
        }

        if (digest is { IsDefault: true } || (tag is not null && !IsValidTag(tag)))
        {
            return false;
        }

        registry = NormalizeHost(registry);
        if (!IsValidRepository(repository))
        {
            return false;
        }

        repository = NormalizeRepository(registry, repository);
        if (registry.Length + 1 + repository.Length > MaxNameLength)
        {
            return false;
        }

        reference = new Reference(registry, repository, tag ?? (digest is null ? DefaultTag : null), digest);
        return true;
    }

    /// <inheritdoc cref="TryCreate"/>
    public static Reference Create(string registry, string repository, string? tag = null, Digest? digest = null) =>
        TryCreate(registry, repository, tag, digest, out var reference)
            ? reference
            : throw new ArgumentException($"'{registry}', '{repository}', '{tag}', '{digest}' do not form a valid image reference.");

    /// <summary>
    /// The canonical form: <c>docker.io/library/nginx:1.27</c>, <c>…@sha256:…</c> or <c>…:1.27@sha256:…</c>.
    /// Note that CRI (ParseDockerRef) stores a tag-and-digest reference under the digest form only.
    /// </summary>
    public override string ToString() => _value;

    public bool Equals(Reference? other) => other is not null && string.Equals(_value, other._value, StringComparison.Ordinal);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(_value);

    // distribution/reference refuses these as names because they are ambiguous with image IDs.
    private static bool IsBareSha256Hex(string value)
    {
        if (value.Length != 64)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f'))
            {
                return false;
            }
        }

        return true;
    }
}
