using System.Diagnostics;
using Spegel.Core;
using Spegel.TestRig;

namespace Spegel.Containerd.Tests;

/// <summary>What the client does when containerd is missing, dies, or comes back.</summary>
public sealed class ContainerdClientAvailabilityTests
{
    private static CancellationToken Timeout => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    [Fact]
    public async Task GetVersionAsync_MissingSocket_ThrowsUnavailableNamingPathQuickly()
    {
        var socket = Path.Combine(Path.GetTempPath(), $"spegel-missing-{Guid.NewGuid():N}", "containerd.sock");
        await using var client = new ContainerdClient(new ContainerdOptions { Socket = socket });
        var clock = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<ContainerdUnavailableException>(() => client.GetVersionAsync(Timeout));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.Contains(socket, ex.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
        Assert.Equal(socket, ex.SocketPath);
    }

    [Fact]
    public async Task EveryCall_MissingSocket_ThrowsUnavailable()
    {
        var socket = Path.Combine(Path.GetTempPath(), $"spegel-missing-{Guid.NewGuid():N}.sock");
        await using var client = new ContainerdClient(new ContainerdOptions { Socket = socket });
        var digest = Digest.ComputeSha256("x"u8);

        await Assert.ThrowsAsync<ContainerdUnavailableException>(() => client.ListImagesAsync(Timeout));
        await Assert.ThrowsAsync<ContainerdUnavailableException>(() => client.GetImageAsync("a/b:c", Timeout));
        await Assert.ThrowsAsync<ContainerdUnavailableException>(() => client.GetContentInfoAsync(digest, Timeout));
        await Assert.ThrowsAsync<ContainerdUnavailableException>(() => client.ReadAllAsync(digest, 1024, Timeout));
        await using var stream = client.OpenRead(digest);
        await Assert.ThrowsAsync<ContainerdUnavailableException>(async () => await stream.ReadExactlyAsync(new byte[1], Timeout));
        await Assert.ThrowsAsync<ContainerdUnavailableException>(async () =>
        {
            await foreach (var _ in client.SubscribeImageEventsAsync(Timeout))
            {
            }
        });
    }

    [Fact]
    public async Task Client_ContainerdKilledThenRestarted_FailsWithConnectionRefusedThenRecovers()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        await using var containerd = await ContainerdInstance.StartAsync();
        var image = await new TestImages(registry).MultiLayerAsync();
        (await containerd.PullAsync(image.Reference)).EnsureSuccess();
        await using var client = new ContainerdClient(PulledImagesFixture.ClientOptions(containerd));
        Assert.NotNull(await client.GetImageAsync(image.Reference, Timeout));

        await containerd.KillAsync();

        // The socket file is left behind, stale: the client says so, naming the path.
        Assert.True(File.Exists(containerd.Socket));
        var ex = await Assert.ThrowsAsync<ContainerdUnavailableException>(() => client.ListImagesAsync(Timeout));
        Assert.Contains(containerd.Socket, ex.Message, StringComparison.Ordinal);

        // The first call may still find the old connection dying; a new one is refused.
        ex = await Assert.ThrowsAsync<ContainerdUnavailableException>(() => client.ListImagesAsync(Timeout));
        Assert.Contains("refused", ex.Message, StringComparison.Ordinal);

        await containerd.RestartAsync();

        // Same client, new connection; the image and its content survived the crash.
        var listed = Assert.Single(await client.ListImagesAsync(Timeout));
        Assert.Equal(image.Digest, listed.Target.Digest);
        foreach (var blob in image.NativeBlobs)
        {
            Assert.Equal(blob.Size, (await client.GetContentInfoAsync(blob.Digest, Timeout))?.Size);
        }
    }

    [Fact]
    public void TryConvert_InvalidTargetDigest_SkipsImage()
    {
        var image = new Api.Images.Image
        {
            Name = "example.com/bad:1",
            Target = new Api.Types.ContentDescriptor { MediaType = MediaTypes.OciManifest, Digest = "sha256:NOTHEX", Size = 10 },
        };

        Assert.Null(ContainerdClient.TryConvert(image, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance));
        Assert.Null(ContainerdClient.TryConvert(new Api.Images.Image { Name = "no-target" }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance));
    }

    [Fact]
    public void TryConvert_ValidTarget_MapsDescriptorAndLabels()
    {
        var digest = Digest.ComputeSha256("m"u8);
        var image = new Api.Images.Image
        {
            Name = "example.com/good:1",
            Target = new Api.Types.ContentDescriptor { MediaType = MediaTypes.OciIndex, Digest = digest.ToString(), Size = 42, Annotations = { ["a"] = "b" } },
            Labels = { ["io.cri-containerd.image"] = "managed" },
            CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero)),
        };

        var converted = ContainerdClient.TryConvert(image, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        Assert.NotNull(converted);
        Assert.Equal(new Descriptor(MediaTypes.OciIndex, digest, 42).Digest, converted.Target.Digest);
        Assert.Equal(42, converted.Target.Size);
        Assert.Equal("b", converted.Target.Annotations!["a"]);
        Assert.Equal("managed", converted.Labels["io.cri-containerd.image"]);
        Assert.Equal(new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero), converted.CreatedAt);
    }
}
