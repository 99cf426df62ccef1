using System.Runtime.InteropServices;
using Spegel.Core;

namespace Spegel.TestRig;

/// <summary>One image manifest of a test image: its platform, config and layers, as the registry serves them.</summary>
public sealed record TestManifest(Descriptor Manifest, Platform Platform, Descriptor Config, IReadOnlyList<Descriptor> Layers)
{
    /// <summary>Manifest, config and layers.</summary>
    public IReadOnlyList<Descriptor> Blobs => [Manifest, Config, .. Layers];
}

/// <summary>
/// An image pushed to an <see cref="UpstreamRegistry"/>, described from what the registry serves after the push
/// (so the digests are the real ones, also after skopeo's format conversion).
/// </summary>
public sealed record TestImage(string Reference, string Registry, string Repository, string Tag, Descriptor Root, IReadOnlyList<TestManifest> Manifests)
{
    public Digest Digest => Root.Digest;

    public bool IsIndex => MediaTypes.IsIndex(Root.MediaType);

    /// <summary>The reference by digest: <c>HOST/repo@sha256:…</c>.</summary>
    public string DigestReference => $"{Registry}/{Repository}@{Digest}";

    /// <summary>Every blob of the image: the root, each manifest, each config, each layer (distinct).</summary>
    public IReadOnlyList<Descriptor> Blobs =>
        (IsIndex ? new[] { Root } : []).Concat(Manifests.SelectMany(m => m.Blobs)).DistinctBy(d => d.Digest).ToList();

    /// <summary>The blobs a pull for <paramref name="platform"/> fetches: the root index (if any) and that platform's manifest tree.</summary>
    public IReadOnlyList<Descriptor> BlobsFor(Platform platform)
    {
        var manifest = Manifests.FirstOrDefault(m => m.Platform.Os == platform.Os && m.Platform.Architecture == platform.Architecture)
            ?? throw new InvalidOperationException($"{Reference} has no manifest for {platform}; it has {string.Join(", ", Manifests.Select(m => m.Platform))}.");
        return (IsIndex ? new[] { Root } : []).Concat(manifest.Blobs).DistinctBy(d => d.Digest).ToList();
    }

    /// <summary>The blobs a default <c>ctr images pull</c> on this machine fetches.</summary>
    public IReadOnlyList<Descriptor> NativeBlobs => BlobsFor(TestImages.NativePlatform);

    /// <summary>Total bytes of <see cref="Blobs"/>.</summary>
    public long TotalSize => Blobs.Sum(b => b.Size);
}

/// <summary>The kinds of image <see cref="TestImages"/> builds.</summary>
public enum TestImageKind
{
    SingleLayer,
    MultiLayer,
    MultiPlatform,
    DockerSchema2,
    LargeLayer,
}

internal static class PlatformNames
{
    public static Platform Native { get; } = new(
        RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => "amd64",
            Architecture.Arm64 => "arm64",
            Architecture.X86 => "386",
            Architecture.Arm => "arm",
            var other => other.ToString().ToLowerInvariant(),
        },
        "linux",
        RuntimeInformation.OSArchitecture == Architecture.Arm ? "v7" : null);
}
