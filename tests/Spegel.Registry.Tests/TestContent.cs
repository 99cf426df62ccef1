using System.Text;
using Spegel.Core;
using Spegel.Core.Content;

namespace Spegel.Registry.Tests;

/// <summary>A small image in an in-memory store: an OCI index → one manifest → config and a 1 MiB layer.</summary>
internal sealed class TestContent
{
    public const string Registry = "docker.io";

    public TestContent()
    {
        Layer = new byte[1024 * 1024];
        new Random(42).NextBytes(Layer);
        LayerDigest = Store.Add(Layer);
        Config = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
        ConfigDigest = Store.Add(Config);
        Manifest = Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\"," +
            $"\"config\":{{\"mediaType\":\"{MediaTypes.OciConfig}\",\"digest\":\"{ConfigDigest}\",\"size\":{Config.Length}}}," +
            $"\"layers\":[{{\"mediaType\":\"{MediaTypes.OciLayerGzip}\",\"digest\":\"{LayerDigest}\",\"size\":{Layer.Length}}}]}}");
        ManifestDigest = Store.Add(Manifest, isManifest: true);
        Index = Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciIndex}\",\"manifests\":[" +
            $"{{\"mediaType\":\"{MediaTypes.OciManifest}\",\"digest\":\"{ManifestDigest}\",\"size\":{Manifest.Length},\"platform\":{{\"architecture\":\"amd64\",\"os\":\"linux\"}}}}]}}");
        IndexDigest = Store.Add(Index, isManifest: true);
        Store.Tag(Reference.Parse("docker.io/library/app:1.0"), new Descriptor(MediaTypes.OciIndex, IndexDigest, Index.Length));
        Store.Tag(Reference.Parse("docker.io/library/app:latest"), new Descriptor(MediaTypes.OciIndex, IndexDigest, Index.Length));
    }

    public InMemoryLocalContent Store { get; } = new();

    public byte[] Layer { get; }

    public Digest LayerDigest { get; }

    public byte[] Config { get; }

    public Digest ConfigDigest { get; }

    public byte[] Manifest { get; }

    public Digest ManifestDigest { get; }

    public byte[] Index { get; }

    public Digest IndexDigest { get; }
}
