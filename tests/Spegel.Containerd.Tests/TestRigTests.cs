using System.Diagnostics;
using Spegel.Core;
using Spegel.TestRig;

namespace Spegel.Containerd.Tests;

/// <summary>The rig itself: what later test projects rely on.</summary>
public sealed class TestRigTests
{
    [Fact]
    public async Task UpstreamRegistry_StopThenRestart_RefusesThenServesSameImageOnSamePort()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        var images = new TestImages(registry);
        var image = await images.SingleLayerAsync();
        var port = registry.Port;

        await registry.StopAsync();

        Assert.False(registry.IsRunning);
        Assert.False(await Ports.IsListeningAsync(port));

        await registry.RestartAsync();

        Assert.Equal(port, registry.Port);
        var again = await images.DescribeAsync(image.Repository, image.Tag);
        Assert.Equal(image.Digest, again.Digest);
    }

    [Fact]
    public async Task ContainerdInstance_TwoInstances_RunSideBySideWithSeparateStores()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        var startA = ContainerdInstance.StartAsync();
        var startB = ContainerdInstance.StartAsync();
        await using var a = await startA;
        await using var b = await startB;
        var image = await new TestImages(registry).SingleLayerAsync();

        (await a.PullAsync(image.Reference)).EnsureSuccess();

        Assert.NotEqual(a.Socket, b.Socket);
        Assert.Equal([image.Reference], await a.ListImagesAsync());
        Assert.Empty(await b.ListImagesAsync());
        Assert.True(File.Exists(a.BlobPath(image.Digest)));
        Assert.False(File.Exists(b.BlobPath(image.Digest)));
    }

    [Fact]
    public async Task ContainerdInstance_Dispose_RemovesProcessMountsAndDirectory()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        var containerd = await ContainerdInstance.StartAsync();
        var image = await new TestImages(registry).MultiLayerAsync();
        (await containerd.PullAsync(image.Reference)).EnsureSuccess();
        var pid = containerd.ProcessId;
        var directory = containerd.Directory;
        Assert.NotNull(pid);

        await containerd.DisposeAsync();

        Assert.False(Directory.Exists($"/proc/{pid}"), $"containerd (pid {pid}) is still running");
        Assert.Empty(RigDirectory.MountsBelow(directory));
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task ContainerdInstance_StopThenRestart_KeepsImagesAndContent()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        await using var containerd = await ContainerdInstance.StartAsync();
        var image = await new TestImages(registry).MultiPlatformAsync();
        (await containerd.PullAsync(image.Reference)).EnsureSuccess();

        await containerd.StopAsync();
        Assert.False(containerd.IsRunning);
        await containerd.RestartAsync();

        Assert.True(containerd.IsRunning);
        Assert.Equal([image.Reference], await containerd.ListImagesAsync());
        Assert.All(image.NativeBlobs, b => Assert.True(File.Exists(containerd.BlobPath(b.Digest)), $"{b.Digest} missing after restart"));
    }

    [Fact]
    public async Task PullAsync_HostsDirWithMirror_PullsThroughMirrorWhenServerIsDown()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        await using var containerd = await ContainerdInstance.StartAsync();
        var image = await new TestImages(registry).MultiLayerAsync();

        // The registry named in the reference refuses connections; only the mirror entry can serve the pull.
        var deadHost = $"127.0.0.1:{Ports.GetFreeTcpPort()}";
        var hostsDir = Path.Combine(containerd.Directory, "certs.d");
        var written = HostsDir.Write(hostsDir, deadHost, $"http://{deadHost}", registry.Url.ToString().TrimEnd('/'));
        var reference = $"{deadHost}/{image.Repository}:{image.Tag}";

        var pull = await containerd.PullAsync(reference, hostsDir);

        pull.EnsureSuccess();
        Assert.Equal(Path.Combine(hostsDir, deadHost, "hosts.toml"), written);
        Assert.Equal([reference], await containerd.ListImagesAsync());
        Assert.All(image.NativeBlobs, b => Assert.True(File.Exists(containerd.BlobPath(b.Digest))));
    }

    [Fact]
    public async Task PullAsync_WithoutUnpack_FetchesContentAndImageButNoSnapshots()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        await using var containerd = await ContainerdInstance.StartAsync();
        var image = await new TestImages(registry).MultiLayerAsync();

        (await containerd.PullAsync(image.Reference, unpack: false)).EnsureSuccess();

        Assert.Equal([image.Reference], await containerd.ListImagesAsync());
        Assert.All(image.NativeBlobs, b => Assert.True(File.Exists(containerd.BlobPath(b.Digest))));
        var snapshots = (await containerd.CtrAsync(["snapshots", "--snapshotter", containerd.Snapshotter, "ls"])).EnsureSuccess();
        Assert.DoesNotContain("Committed", snapshots.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PullAsync_Default_UnpacksIntoSnapshotter()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        await using var containerd = await ContainerdInstance.StartAsync();
        var image = await new TestImages(registry).MultiLayerAsync();

        var pull = (await containerd.PullAsync(image.Reference)).EnsureSuccess();

        Assert.Contains("unpacking linux/", pull.StdOut, StringComparison.Ordinal);
        var snapshots = (await containerd.CtrAsync(["snapshots", "--snapshotter", containerd.Snapshotter, "ls"])).EnsureSuccess();
        Assert.Equal(image.Manifests[0].Layers.Count, snapshots.StdOut.Split('\n').Count(l => l.Contains("Committed", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task PullAsync_UpstreamDown_FailsAsResult()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        await using var containerd = await ContainerdInstance.StartAsync();
        var image = await new TestImages(registry).SingleLayerAsync();
        await registry.StopAsync();

        var pull = await containerd.PullAsync(image.Reference);

        Assert.False(pull.Succeeded);
        Assert.Contains("connection refused", pull.StdErr + pull.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void HostsDir_Render_WritesMirrorsInOrderThenServer()
    {
        var toml = HostsDir.Render("https://registry-1.docker.io", ["http://127.0.0.1:5001", "http://127.0.0.1:5002"]);

        Assert.Equal(
            """
            server = "https://registry-1.docker.io"

            [host."http://127.0.0.1:5001"]
              capabilities = ["pull", "resolve"]

            [host."http://127.0.0.1:5002"]
              capabilities = ["pull", "resolve"]


            """.ReplaceLineEndings("\n"),
            toml.ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task TestImages_SmallImages_BuildQuicklyWithExpectedShapes()
    {
        await using var registry = await UpstreamRegistry.StartAsync();
        var clock = Stopwatch.StartNew();

        var images = await new TestImages(registry).SmallImagesAsync();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.Collection(
            images,
            single => Assert.Single(Assert.Single(single.Manifests).Layers),
            multi => Assert.InRange(Assert.Single(multi.Manifests).Layers.Count, 3, 4),
            index =>
            {
                Assert.Equal(MediaTypes.OciIndex, index.Root.MediaType);
                Assert.Equal(["linux/amd64", "linux/arm64"], index.Manifests.Select(m => m.Platform.ToString()));
            },
            docker =>
            {
                Assert.Equal(MediaTypes.DockerManifest, docker.Root.MediaType);
                Assert.All(docker.Manifests[0].Layers, l => Assert.Equal(MediaTypes.DockerLayerGzip, l.MediaType));
                Assert.Equal(MediaTypes.DockerConfig, docker.Manifests[0].Config.MediaType);
            });
        Assert.All(images, i => Assert.StartsWith(registry.Host + "/", i.Reference, StringComparison.Ordinal));
    }

    [Fact]
    public void RequiredTools_MissingBinary_ThrowsNamingPackage()
    {
        var ex = Assert.Throws<MissingToolException>(() => RequiredTools.Find("spegel-no-such-tool", "spegel-package"));

        Assert.Contains("apt-get install -y spegel-package", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProcessRunner_Timeout_KillsAndThrows()
    {
        var clock = Stopwatch.StartNew();

        await Assert.ThrowsAsync<TimeoutException>(() => ProcessRunner.RunAsync("/bin/sleep", ["30"], TimeSpan.FromMilliseconds(200)));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
    }
}
