using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Spegel.Core;

/// <summary>The outcome of <see cref="ManifestParser.Parse"/>: the children of an index or image manifest, or why there are none.</summary>
public sealed record ManifestParseResult
{
    private ManifestParseResult(string? mediaType, IReadOnlyList<Descriptor> children, Descriptor? subject, string? error)
    {
        MediaType = mediaType;
        Children = children;
        Subject = subject;
        Error = error;
    }

    [MemberNotNullWhen(true, nameof(MediaType))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool IsSuccess => Error is null;

    /// <summary>The media type the content was parsed as: the one given, or the one sniffed from the JSON.</summary>
    public string? MediaType { get; }

    /// <summary>An index's manifests (with platform), or an image manifest's config followed by its layers.</summary>
    public IReadOnlyList<Descriptor> Children { get; }

    /// <summary>The manifest this one refers to (OCI 1.1 referrers); not a child, so walks do not follow it.</summary>
    public Descriptor? Subject { get; }

    public string? Error { get; }

    internal static ManifestParseResult Success(string mediaType, IReadOnlyList<Descriptor> children, Descriptor? subject) =>
        new(mediaType, children, subject, null);

    internal static ManifestParseResult Failure(string error) => new(null, [], null, error);
}

/// <summary>Reads the descriptors out of OCI and Docker schema 2 indexes and image manifests.</summary>
public static class ManifestParser
{
    private const int MaxQuotedLength = 80;

    /// <summary>
    /// Parses manifest content. When <paramref name="mediaType"/> is not a manifest type (null, or a generic
    /// type such as <c>application/json</c>), the type is taken from the JSON <c>mediaType</c> field, or
    /// sniffed from the presence of <c>manifests</c> (index) or <c>config</c> (image manifest).
    /// Never throws on bad content; the result carries the error instead.
    /// </summary>
    public static ManifestParseResult Parse(string? mediaType, ReadOnlySpan<byte> content)
    {
        ManifestDocument? document;
        try
        {
            document = JsonSerializer.Deserialize(content, ManifestJsonContext.Default.ManifestDocument);
        }
        catch (JsonException ex)
        {
            return ManifestParseResult.Failure($"not valid manifest JSON: {ex.Message}");
        }

        if (document is null)
        {
            return ManifestParseResult.Failure("not valid manifest JSON: the document is null");
        }

        if (document.SchemaVersion == 1)
        {
            return ManifestParseResult.Failure("Docker schema 1 manifests are not supported");
        }

        var resolved = ResolveMediaType(mediaType, document, out var error);
        if (resolved is null)
        {
            return ManifestParseResult.Failure(error!);
        }

        // Refuse content whose shape contradicts its type, so an index cannot be read as an image or back
        // (the same confusion containerd's validateMediaType guards against).
        List<Descriptor> children = [];
        if (MediaTypes.IsIndex(resolved))
        {
            if (document.Manifests is null || document.Config is not null || document.Layers is not null)
            {
                return ManifestParseResult.Failure($"'{resolved}' content must have 'manifests' and no 'config' or 'layers'");
            }

            if (!TryAddAll(document.Manifests, "manifests", children, out error))
            {
                return ManifestParseResult.Failure(error);
            }
        }
        else
        {
            if (document.Config is null || document.Manifests is not null)
            {
                return ManifestParseResult.Failure($"'{resolved}' content must have 'config' and no 'manifests'");
            }

            if (!TryConvert(document.Config, "config", out var config, out error) || !TryAddAll(document.Layers ?? [], "layers", children, out error))
            {
                return ManifestParseResult.Failure(error);
            }

            children.Insert(0, config);
        }

        Descriptor? subject = null;
        if (document.Subject is not null && !TryConvert(document.Subject, "subject", out subject, out error))
        {
            return ManifestParseResult.Failure(error);
        }

        return ManifestParseResult.Success(resolved, children, subject);
    }

    private static string? ResolveMediaType(string? given, ManifestDocument document, out string? error)
    {
        error = null;
        var declared = document.MediaType;
        if (MediaTypes.IsManifest(given))
        {
            if (declared is not null && declared != given)
            {
                error = $"media type mismatch: expected '{given}', content declares '{Quote(declared)}'";
                return null;
            }

            return given;
        }

        if (declared is not null)
        {
            if (MediaTypes.IsManifest(declared))
            {
                return declared;
            }

            error = $"unsupported manifest media type '{Quote(declared)}'";
            return null;
        }

        if (document.Manifests is not null)
        {
            return MediaTypes.OciIndex;
        }

        if (document.Config is not null)
        {
            return MediaTypes.OciManifest;
        }

        error = "neither an index ('manifests') nor an image manifest ('config')";
        return null;
    }

    private static bool TryAddAll(List<DescriptorDocument?> documents, string field, List<Descriptor> into, [NotNullWhen(false)] out string? error)
    {
        for (var i = 0; i < documents.Count; i++)
        {
            if (!TryConvert(documents[i], $"{field}[{i}]", out var descriptor, out error))
            {
                return false;
            }

            into.Add(descriptor);
        }

        error = null;
        return true;
    }

    private static bool TryConvert(
        DescriptorDocument? document,
        string where,
        [NotNullWhen(true)] out Descriptor? descriptor,
        [NotNullWhen(false)] out string? error)
    {
        descriptor = null;
        var digest = default(Digest);
        error = document switch
        {
            null => "descriptor is null",
            { MediaType: null or "" } => "descriptor has no mediaType",
            { Size: null } => "descriptor has no size",
            { Size: < 0 } => $"descriptor size {document.Size} is negative",
            { Platform: { Architecture: null or "" } or { Os: null or "" } } => "platform needs architecture and os",
            _ when !Digest.TryParse(document.Digest, out digest) => $"invalid digest '{Quote(document.Digest)}'",
            _ => null,
        };
        if (error is not null)
        {
            error = $"{where}: {error}";
            return false;
        }

        descriptor = new Descriptor(document!.MediaType!, digest, document.Size!.Value)
        {
            Platform = document.Platform is { } p ? new Platform(p.Architecture!, p.Os!, p.Variant) : null,
            Annotations = document.Annotations,
        };
        return true;
    }

    // Content comes from the network; keep what is echoed into errors and logs short.
    private static string Quote(string? value) =>
        value is null ? "(none)" : value.Length <= MaxQuotedLength ? value : string.Concat(value.AsSpan(0, MaxQuotedLength), "…");
}

internal sealed class ManifestDocument
{
    public int? SchemaVersion { get; set; }

    public string? MediaType { get; set; }

    public DescriptorDocument? Config { get; set; }

    public List<DescriptorDocument?>? Layers { get; set; }

    public List<DescriptorDocument?>? Manifests { get; set; }

    public DescriptorDocument? Subject { get; set; }
}

internal sealed class DescriptorDocument
{
    public string? MediaType { get; set; }

    public string? Digest { get; set; }

    public long? Size { get; set; }

    public PlatformDocument? Platform { get; set; }

    public Dictionary<string, string>? Annotations { get; set; }
}

internal sealed class PlatformDocument
{
    public string? Architecture { get; set; }

    public string? Os { get; set; }

    public string? Variant { get; set; }
}

// Duplicate keys are refused: two "mediaType" or "digest" keys read differently by different parsers is a known confusion attack.
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, AllowDuplicateProperties = false)]
[JsonSerializable(typeof(ManifestDocument))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;
