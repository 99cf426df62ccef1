using System.Diagnostics;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.Containerd.Tests;

/// <summary>A ≥ 100 MiB layer: streamed, never buffered, by gRPC and from the file.</summary>
public sealed class LargeLayerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task OpenRead_LargeLayer_StreamsBytesMatchingDigestByGrpcAndFile()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await using var registry = await UpstreamRegistry.StartAsync(cts.Token);
        await using var containerd = await ContainerdInstance.StartAsync(ct: cts.Token);
        var clock = Stopwatch.StartNew();
        var image = await new TestImages(registry).LargeLayerAsync();
        output.WriteLine($"built and pushed {image.TotalSize} bytes in {clock.ElapsedMilliseconds} ms");
        clock.Restart();
        (await containerd.PullAsync(image.Reference, ct: cts.Token)).EnsureSuccess();
        output.WriteLine($"pulled and unpacked in {clock.ElapsedMilliseconds} ms");
        await using var client = new ContainerdClient(PulledImagesFixture.ClientOptions(containerd));
        var layer = image.Manifests[0].Layers[0];
        Assert.True(layer.Size >= TestImages.LargeLayerDefaultSize, $"layer is {layer.Size} bytes");

        clock.Restart();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        await using (var stream = client.OpenRead(layer.Digest))
        {
            var (digest, length) = await Hashing.Sha256Async(stream, cts.Token);
            Assert.Equal(layer.Digest, digest);
            Assert.Equal(layer.Size, length);
        }

        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        output.WriteLine($"gRPC read: {clock.ElapsedMilliseconds} ms, {allocated / 1024 / 1024} MiB allocated");

        clock.Restart();
        var path = client.GetContentFilePath(layer.Digest);
        Assert.NotNull(path);
        var (fileDigest, fileLength) = await Hashing.Sha256OfFileAsync(path, cts.Token);
        Assert.Equal(layer.Digest, fileDigest);
        Assert.Equal(layer.Size, fileLength);
        output.WriteLine($"file read: {clock.ElapsedMilliseconds} ms");

        // Mid-stream failure: the blob is far larger than the HTTP/2 window, so a kill lands while bytes are still owed.
        await using (var stream = client.OpenRead(layer.Digest, offset: 1024))
        {
            await stream.ReadExactlyAsync(new byte[256 * 1024], cts.Token);
            await containerd.KillAsync();
            var ex = await Record.ExceptionAsync(async () =>
            {
                var buffer = new byte[64 * 1024];
                while (await stream.ReadAsync(buffer, cts.Token) > 0)
                {
                }
            });
            Assert.True(ex is ContainerdUnavailableException, $"expected ContainerdUnavailableException, got {ex?.GetType().Name ?? "no exception"}: {ex}");
        }
    }
}
