using System.Text;
using System.Text.Json;

namespace Spegel.Core.Tests;

public class ImageWalkerTests
{
    private static readonly Platform Amd64 = new("amd64", "linux");
    private static readonly Platform Arm64 = new("arm64", "linux", "v8");

    [Fact]
    public async Task WalkAsync_SingleManifest_ReachesConfigAndLayers()
    {
        var store = new BlobStore();
        var config = BlobStore.Leaf(MediaTypes.OciConfig, "config");
        var layer = BlobStore.Leaf(MediaTypes.OciLayerGzip, "layer");
        var manifest = store.Manifest(config, layer);

        var result = await ImageWalker.WalkAsync(manifest, store.FetchAsync, CancellationToken.None);

        Assert.Equal([manifest, config, layer], result.Present);
        Assert.Empty(result.Missing);
        Assert.Empty(result.Errors);
    }

    [Fact]
    public async Task WalkAsync_PlatformManifestNotOnNode_MissingAndChildrenNotWalked()
    {
        var store = new BlobStore();
        var amdLayer = BlobStore.Leaf(MediaTypes.OciLayerGzip, "amd64 layer");
        var armLayer = BlobStore.Leaf(MediaTypes.OciLayerGzip, "arm64 layer");
        var amd = store.Manifest(BlobStore.Leaf(MediaTypes.OciConfig, "amd64 config"), amdLayer) with { Platform = Amd64 };
        var arm = store.Manifest(BlobStore.Leaf(MediaTypes.OciConfig, "arm64 config"), armLayer) with { Platform = Arm64 };
        var index = store.Index(amd, arm);
        store.Forget(arm);

        var result = await ImageWalker.WalkAsync(index, store.FetchAsync, CancellationToken.None);

        Assert.Equal([index.Digest, amd.Digest], result.Present.Where(d => MediaTypes.IsManifest(d.MediaType)).Select(d => d.Digest));
        Assert.Contains(amdLayer, result.Present);
        Assert.Equal([arm], result.Missing);
        Assert.DoesNotContain(armLayer, result.Present);
        Assert.Empty(result.Errors);
    }

    [Fact]
    public async Task WalkAsync_RootNotOnNode_RootMissing()
    {
        var store = new BlobStore();
        var manifest = store.Manifest(BlobStore.Leaf(MediaTypes.OciConfig, "config"));
        store.Forget(manifest);

        var result = await ImageWalker.WalkAsync(manifest, store.FetchAsync, CancellationToken.None);

        Assert.Empty(result.Present);
        Assert.Equal([manifest], result.Missing);
    }

    [Fact]
    public async Task WalkAsync_LayerSharedAcrossPlatforms_ListedOnce()
    {
        var store = new BlobStore();
        var shared = BlobStore.Leaf(MediaTypes.OciLayerGzip, "debian base");
        var amd = store.Manifest(BlobStore.Leaf(MediaTypes.OciConfig, "amd64 config"), shared) with { Platform = Amd64 };
        var arm = store.Manifest(BlobStore.Leaf(MediaTypes.OciConfig, "arm64 config"), shared) with { Platform = Arm64 };
        var index = store.Index(amd, arm);

        var result = await ImageWalker.WalkAsync(index, store.FetchAsync, CancellationToken.None);

        Assert.Single(result.Present, d => d.Digest == shared.Digest);
        Assert.Equal(6, result.Present.Count); // index, 2 manifests, 2 configs, 1 shared layer
    }

    [Fact]
    public async Task WalkAsync_ManifestListedTwice_FetchedOnce()
    {
        var store = new BlobStore();
        var manifest = store.Manifest(BlobStore.Leaf(MediaTypes.OciConfig, "config"));
        var index = store.Index(manifest with { Platform = Amd64 }, manifest with { Platform = Arm64 });

        var result = await ImageWalker.WalkAsync(index, store.FetchAsync, CancellationToken.None);

        Assert.Equal(1, store.FetchCount(manifest.Digest));
        Assert.Equal(3, result.Present.Count);
    }

    [Fact]
    public async Task WalkAsync_WithExistsCallback_UsesItForConfigAndLayersOnly()
    {
        var store = new BlobStore();
        var config = BlobStore.Leaf(MediaTypes.OciConfig, "config");
        var here = BlobStore.Leaf(MediaTypes.OciLayerGzip, "here");
        var gone = BlobStore.Leaf(MediaTypes.OciLayerZstd, "gone");
        var manifest = store.Manifest(config, here, gone);
        var asked = new List<Descriptor>();

        var result = await ImageWalker.WalkAsync(
            manifest,
            store.FetchAsync,
            (d, _) =>
            {
                asked.Add(d);
                return ValueTask.FromResult(d != gone);
            },
            CancellationToken.None);

        Assert.Equal([config, here, gone], asked);
        Assert.Equal([manifest, config, here], result.Present);
        Assert.Equal([gone], result.Missing);
    }

    [Fact]
    public async Task WalkAsync_FetchReturnsAncestorBytes_StopsWithError()
    {
        // Honest content addressing cannot express a cycle; a fetch that returns the wrong bytes can fake one.
        var store = new BlobStore();
        var child = new Descriptor(MediaTypes.OciIndex, Digest.ComputeSha256("elsewhere"u8), 1);
        var root = store.Index(child);
        var rootBytes = store.Bytes(root);

        var result = await ImageWalker.WalkAsync(
            root,
            (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(rootBytes),
            CancellationToken.None);

        Assert.Equal([root], result.Present);
        Assert.Single(result.Errors, e => e.Contains(child.Digest.ToString(), StringComparison.Ordinal) && e.Contains("does not match", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WalkAsync_CorruptManifestBytes_ErrorAndNotPresent()
    {
        var store = new BlobStore();
        var manifest = store.Manifest(BlobStore.Leaf(MediaTypes.OciConfig, "config"));
        var index = store.Index(manifest);
        store.Corrupt(manifest);

        var result = await ImageWalker.WalkAsync(index, store.FetchAsync, CancellationToken.None);

        Assert.Equal([index], result.Present);
        Assert.Empty(result.Missing);
        Assert.Single(result.Errors, e => e.StartsWith(manifest.Digest.ToString(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task WalkAsync_UnparseableManifest_PresentWithError()
    {
        var store = new BlobStore();
        var broken = store.Put(MediaTypes.OciManifest, "<html>not a manifest</html>"u8.ToArray());

        var result = await ImageWalker.WalkAsync(broken, store.FetchAsync, CancellationToken.None);

        Assert.Equal([broken], result.Present);
        Assert.Single(result.Errors, e => e.Contains("not valid manifest JSON", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WalkAsync_ManifestWithInvalidDigest_PresentWithError()
    {
        var store = new BlobStore();
        var broken = store.Put(
            MediaTypes.OciManifest,
            """{"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:abc","size":1}}"""u8.ToArray());

        var result = await ImageWalker.WalkAsync(broken, store.FetchAsync, CancellationToken.None);

        Assert.Equal([broken], result.Present);
        Assert.Single(result.Errors, e => e.Contains("config: invalid digest", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(2, 0)] // index → index → manifest → config: depth 3
    [InlineData(3, 0)] // config at depth 4 = MaxDepth
    [InlineData(4, 1)] // config at depth 5
    public async Task WalkAsync_NestedIndexes_DepthBounded(int indexLevels, int expectedErrors)
    {
        var store = new BlobStore();
        var config = BlobStore.Leaf(MediaTypes.OciConfig, "config");
        var root = store.Manifest(config);
        for (var i = 0; i < indexLevels; i++)
        {
            root = store.Index(root);
        }

        var result = await ImageWalker.WalkAsync(root, store.FetchAsync, CancellationToken.None);

        Assert.Equal(expectedErrors, result.Errors.Count(e => e.Contains("nested deeper", StringComparison.Ordinal)));
        Assert.Equal(expectedErrors == 0, result.Present.Contains(config));
    }

    [Fact]
    public async Task WalkAsync_HugeFanOut_StopsAtCapWithError()
    {
        var store = new BlobStore();
        var layers = Enumerable.Range(0, ImageWalker.MaxDescriptors + 10)
            .Select(i => new Descriptor(MediaTypes.OciLayerGzip, Digest.ComputeSha256(Encoding.UTF8.GetBytes($"layer {i}")), 1))
            .ToArray();
        var manifest = store.Manifest(BlobStore.Leaf(MediaTypes.OciConfig, "config"), layers);

        var result = await ImageWalker.WalkAsync(manifest, store.FetchAsync, CancellationToken.None);

        Assert.Equal(ImageWalker.MaxDescriptors, result.Present.Count);
        Assert.Single(result.Errors, e => e.Contains("more than", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WalkAsync_Cancelled_Throws()
    {
        var store = new BlobStore();
        var manifest = store.Manifest(BlobStore.Leaf(MediaTypes.OciConfig, "config"));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => ImageWalker.WalkAsync(manifest, store.FetchAsync, new CancellationToken(canceled: true)));
    }

    /// <summary>An in-memory content store of manifests and indexes; configs and layers are only described.</summary>
    private sealed class BlobStore
    {
        private readonly Dictionary<Digest, byte[]> _blobs = [];
        private readonly Dictionary<Digest, int> _fetches = [];

        /// <summary>Describes a config or layer without storing it: the walk never fetches those.</summary>
        public static Descriptor Leaf(string mediaType, string content)
        {
            var bytes = Encoding.UTF8.GetBytes(content);
            return new Descriptor(mediaType, Digest.ComputeSha256(bytes), bytes.Length);
        }

        public Descriptor Put(string mediaType, byte[] bytes)
        {
            var descriptor = new Descriptor(mediaType, Digest.ComputeSha256(bytes), bytes.Length);
            _blobs[descriptor.Digest] = bytes;
            return descriptor;
        }

        public Descriptor Manifest(Descriptor config, params Descriptor[] layers) =>
            Put(MediaTypes.OciManifest, Json(w =>
            {
                w.WriteString("mediaType", MediaTypes.OciManifest);
                w.WritePropertyName("config");
                WriteDescriptor(w, config);
                w.WriteStartArray("layers");
                foreach (var layer in layers)
                {
                    WriteDescriptor(w, layer);
                }

                w.WriteEndArray();
            }));

        public Descriptor Index(params Descriptor[] manifests) =>
            Put(MediaTypes.OciIndex, Json(w =>
            {
                w.WriteString("mediaType", MediaTypes.OciIndex);
                w.WriteStartArray("manifests");
                foreach (var manifest in manifests)
                {
                    WriteDescriptor(w, manifest);
                }

                w.WriteEndArray();
            }));

        public byte[] Bytes(Descriptor descriptor) => _blobs[descriptor.Digest];

        public void Forget(Descriptor descriptor) => _blobs.Remove(descriptor.Digest);

        public void Corrupt(Descriptor descriptor) => _blobs[descriptor.Digest][^2] ^= 0x20;

        public int FetchCount(Digest digest) => _fetches.GetValueOrDefault(digest);

        public ValueTask<ReadOnlyMemory<byte>?> FetchAsync(Descriptor descriptor, CancellationToken cancellationToken)
        {
            _fetches[descriptor.Digest] = FetchCount(descriptor.Digest) + 1;
            // Not "? bytes : null": a null byte[] converts to an empty ReadOnlyMemory, not to a null one.
            return ValueTask.FromResult(_blobs.TryGetValue(descriptor.Digest, out var bytes) ? new ReadOnlyMemory<byte>(bytes) : (ReadOnlyMemory<byte>?)null);
        }

        private static byte[] Json(Action<Utf8JsonWriter> writeBody)
        {
            using var stream = new MemoryStream();
            using (var writer = new Utf8JsonWriter(stream))
            {
                writer.WriteStartObject();
                writer.WriteNumber("schemaVersion", 2);
                writeBody(writer);
                writer.WriteEndObject();
            }

            return stream.ToArray();
        }

        private static void WriteDescriptor(Utf8JsonWriter writer, Descriptor descriptor)
        {
            writer.WriteStartObject();
            writer.WriteString("mediaType", descriptor.MediaType);
            writer.WriteString("digest", descriptor.Digest.ToString());
            writer.WriteNumber("size", descriptor.Size);
            if (descriptor.Platform is { } platform)
            {
                writer.WriteStartObject("platform");
                writer.WriteString("architecture", platform.Architecture);
                writer.WriteString("os", platform.Os);
                if (platform.Variant is { } variant)
                {
                    writer.WriteString("variant", variant);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }
    }
}
