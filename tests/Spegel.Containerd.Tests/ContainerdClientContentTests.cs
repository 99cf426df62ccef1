using Spegel.Core;
using Spegel.TestRig;

namespace Spegel.Containerd.Tests;

/// <summary>The client against a real containerd that pulled real images from a real registry with ctr.</summary>
public sealed class ContainerdClientContentTests(PulledImagesFixture rig) : IClassFixture<PulledImagesFixture>
{
    private const long ManifestLimit = 4 * 1024 * 1024;

    private static CancellationToken Timeout => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    [Fact]
    public async Task GetVersionAsync_RunningContainerd_ReturnsDaemonVersion()
    {
        var version = await rig.Client.GetVersionAsync(Timeout);

        var ctr = (await rig.Containerd.CtrAsync(["version"])).EnsureSuccess();
        Assert.False(string.IsNullOrWhiteSpace(version));
        Assert.Contains($"Version:  {version}", ctr.StdOut, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(TestImageKind.SingleLayer)]
    [InlineData(TestImageKind.MultiLayer)]
    [InlineData(TestImageKind.MultiPlatform)]
    [InlineData(TestImageKind.DockerSchema2)]
    public async Task ListImagesAsync_AfterCtrPull_ListsImageWithRootDescriptor(TestImageKind kind)
    {
        var image = rig[kind];

        var listed = await rig.Client.ListImagesAsync(Timeout);

        var found = Assert.Single(listed, i => i.Name == image.Reference);
        Assert.Equal(image.Root.Digest, found.Target.Digest);
        Assert.Equal(image.Root.MediaType, found.Target.MediaType);
        Assert.Equal(image.Root.Size, found.Target.Size);
        Assert.True(found.CreatedAt > DateTimeOffset.UnixEpoch, $"CreatedAt {found.CreatedAt}");
        Assert.True(found.UpdatedAt >= found.CreatedAt, $"UpdatedAt {found.UpdatedAt} before CreatedAt {found.CreatedAt}");
        Assert.Equal(rig.Images.Count(), listed.Count);
    }

    [Fact]
    public async Task GetImageAsync_PulledName_ReturnsImage()
    {
        var image = rig[TestImageKind.MultiPlatform];

        var found = await rig.Client.GetImageAsync(image.Reference, Timeout);

        Assert.NotNull(found);
        Assert.Equal(image.Reference, found.Name);
        Assert.Equal(image.Digest, found.Target.Digest);
        Assert.Equal(MediaTypes.OciIndex, found.Target.MediaType);
    }

    [Fact]
    public async Task GetImageAsync_UnknownName_ReturnsNull()
    {
        var found = await rig.Client.GetImageAsync($"{rig.Registry.Host}/no/such:image", Timeout);

        Assert.Null(found);
    }

    [Theory]
    [InlineData(TestImageKind.SingleLayer)]
    [InlineData(TestImageKind.MultiLayer)]
    [InlineData(TestImageKind.MultiPlatform)]
    [InlineData(TestImageKind.DockerSchema2)]
    public async Task ImageWalker_PulledImage_FindsEveryNativeBlobAndOnlyThose(TestImageKind kind)
    {
        var image = rig[kind];
        var listed = await rig.Client.GetImageAsync(image.Reference, Timeout);
        Assert.NotNull(listed);

        var walk = await ImageWalker.WalkAsync(
            listed.Target,
            // Careful: null converts to an empty ReadOnlyMemory (via the byte[] operator), not to a null ReadOnlyMemory?.
            async (d, ct) => await rig.Client.ReadAllAsync(d.Digest, ManifestLimit, ct) is { } bytes ? new ReadOnlyMemory<byte>(bytes) : (ReadOnlyMemory<byte>?)null,
            async (d, ct) => await rig.Client.GetContentInfoAsync(d.Digest, ct) is not null,
            Timeout);

        Assert.True(walk.Errors.Count == 0, string.Join("\n", walk.Errors));
        Assert.Equal(Sorted(image.NativeBlobs.Select(b => b.Digest)), Sorted(walk.Present.Select(b => b.Digest)));

        // A default pull fetches only this machine's platform: the other manifest of the index is not in the store.
        var otherManifests = image.Manifests.Where(m => m.Platform.Architecture != TestImages.NativePlatform.Architecture).Select(m => m.Manifest.Digest);
        Assert.Equal(Sorted(otherManifests), Sorted(walk.Missing.Select(m => m.Digest)));
    }

    [Theory]
    [InlineData(TestImageKind.SingleLayer)]
    [InlineData(TestImageKind.MultiLayer)]
    [InlineData(TestImageKind.MultiPlatform)]
    [InlineData(TestImageKind.DockerSchema2)]
    public async Task OpenRead_EveryPulledBlob_StreamsBytesMatchingDigest(TestImageKind kind)
    {
        foreach (var blob in rig[kind].NativeBlobs)
        {
            await using var stream = rig.Client.OpenRead(blob.Digest);
            var (digest, length) = await Hashing.Sha256Async(stream, Timeout);

            Assert.Equal(blob.Digest, digest);
            Assert.Equal(blob.Size, length);
        }
    }

    [Theory]
    [InlineData(TestImageKind.SingleLayer)]
    [InlineData(TestImageKind.MultiLayer)]
    [InlineData(TestImageKind.MultiPlatform)]
    [InlineData(TestImageKind.DockerSchema2)]
    public async Task GetContentFilePath_EveryPulledBlob_FileMatchesDigest(TestImageKind kind)
    {
        foreach (var blob in rig[kind].NativeBlobs)
        {
            var path = rig.Client.GetContentFilePath(blob.Digest);

            Assert.NotNull(path);
            Assert.Equal(rig.Containerd.BlobPath(blob.Digest), path);
            var (digest, length) = await Hashing.Sha256OfFileAsync(path, Timeout);
            Assert.Equal(blob.Digest, digest);
            Assert.Equal(blob.Size, length);
        }
    }

    [Theory]
    [InlineData(1, null)]
    [InlineData(32 * 1024, null)]
    [InlineData(100_000, null)]
    [InlineData(1_000L, 70_000L)]
    [InlineData(40_000L, 1L)]
    public async Task OpenRead_FromOffset_ReturnsExactlyThatRange(long offset, long? length)
    {
        var layer = rig[TestImageKind.SingleLayer].Manifests[0].Layers[0];
        var file = await File.ReadAllBytesAsync(rig.Containerd.BlobPath(layer.Digest));
        Assert.True(file.Length > 100_000, "the single-layer image's layer spans several gRPC chunks");

        await using var stream = rig.Client.OpenRead(layer.Digest, offset, length);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, Timeout);

        var expected = file.AsSpan((int)offset, (int)(length ?? file.Length - offset));
        Assert.True(expected.SequenceEqual(copy.ToArray()), $"bytes from offset {offset} differ");
    }

    [Fact]
    public async Task OpenRead_UnknownDigest_ThrowsContentNotFoundOnFirstRead()
    {
        var unknown = Digest.ComputeSha256("not in containerd"u8);
        await using var stream = rig.Client.OpenRead(unknown);

        var ex = await Assert.ThrowsAsync<ContentNotFoundException>(async () => await stream.ReadExactlyAsync(new byte[16], Timeout));

        Assert.Equal(unknown, ex.Digest);
    }

    [Fact]
    public async Task OpenRead_SynchronousRead_ReturnsSameBytes()
    {
        var config = rig[TestImageKind.SingleLayer].Manifests[0].Config;
        using var stream = rig.Client.OpenRead(config.Digest);
        using var copy = new MemoryStream();

        stream.CopyTo(copy);

        Assert.Equal(config.Digest, Digest.ComputeSha256(copy.ToArray()));
        await Task.CompletedTask;
    }

    [Fact]
    public async Task ReadAllAsync_Manifest_ReturnsExactBytes()
    {
        var root = rig[TestImageKind.MultiPlatform].Root;

        var bytes = await rig.Client.ReadAllAsync(root.Digest, ManifestLimit, Timeout);

        Assert.NotNull(bytes);
        Assert.Equal(root.Size, bytes.Length);
        Assert.Equal(root.Digest, Digest.ComputeSha256(bytes));
    }

    [Fact]
    public async Task ReadAllAsync_ExactlyAtLimit_ReturnsBytes()
    {
        var root = rig[TestImageKind.SingleLayer].Root;

        var bytes = await rig.Client.ReadAllAsync(root.Digest, root.Size, Timeout);

        Assert.NotNull(bytes);
        Assert.Equal(root.Size, bytes.Length);
    }

    [Fact]
    public async Task ReadAllAsync_LargerThanLimit_Throws()
    {
        var layer = rig[TestImageKind.SingleLayer].Manifests[0].Layers[0];

        await Assert.ThrowsAsync<InvalidDataException>(() => rig.Client.ReadAllAsync(layer.Digest, 1024, Timeout));
    }

    [Fact]
    public async Task ReadAllAsync_UnknownDigest_ReturnsNull()
    {
        var bytes = await rig.Client.ReadAllAsync(Digest.ComputeSha256("nope"u8), ManifestLimit, Timeout);

        Assert.Null(bytes);
    }

    [Fact]
    public async Task GetContentInfoAsync_PulledLayer_ReturnsSizeAndTimes()
    {
        var layer = rig[TestImageKind.MultiLayer].Manifests[0].Layers[1];

        var info = await rig.Client.GetContentInfoAsync(layer.Digest, Timeout);

        Assert.NotNull(info);
        Assert.Equal(layer.Digest, info.Digest);
        Assert.Equal(layer.Size, info.Size);
        Assert.True(info.CreatedAt > DateTimeOffset.UnixEpoch, $"CreatedAt {info.CreatedAt}");
        Assert.True(info.UpdatedAt >= info.CreatedAt);

        // containerd's unpacker labels layers with their uncompressed digest: proof that labels come through.
        Assert.Contains("containerd.io/uncompressed", info.Labels.Keys);
    }

    [Fact]
    public async Task GetContentInfoAsync_UnknownDigest_ReturnsNull()
    {
        var info = await rig.Client.GetContentInfoAsync(Digest.ComputeSha256("unknown"u8), Timeout);

        Assert.Null(info);
    }

    [Fact]
    public async Task GetContentInfoAsync_OtherNamespace_ReturnsNull()
    {
        var layer = rig[TestImageKind.SingleLayer].Manifests[0].Layers[0];
        await using var other = new ContainerdClient(new ContainerdOptions
        {
            Socket = rig.Containerd.Socket,
            Namespace = "other",
            ContentPath = rig.Containerd.ContentPath,
        });

        Assert.Null(await other.GetContentInfoAsync(layer.Digest, Timeout));
        Assert.Empty(await other.ListImagesAsync(Timeout));
    }

    [Fact]
    public void GetContentFilePath_UnknownDigest_ReturnsNull()
    {
        Assert.Null(rig.Client.GetContentFilePath(Digest.ComputeSha256("unknown"u8)));
    }

    [Fact]
    public async Task GetContentFilePath_NoContentPath_ReturnsNull()
    {
        var layer = rig[TestImageKind.SingleLayer].Manifests[0].Layers[0];
        await using var client = new ContainerdClient(new ContainerdOptions { Socket = rig.Containerd.Socket, ContentPath = null });

        Assert.Null(client.GetContentFilePath(layer.Digest));
    }

    private static List<string> Sorted(IEnumerable<Digest> digests) => digests.Select(d => d.ToString()).Order(StringComparer.Ordinal).ToList();
}
