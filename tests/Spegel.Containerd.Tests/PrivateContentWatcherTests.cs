using Spegel.Core.Content;
using Spegel.TestRig;

namespace Spegel.Containerd.Tests;

/// <summary>
/// Spegel:PrivateRepositories against real containerd: its distribution.source labels mark where each blob came
/// from, and the indexer's walk leaves private content out of what the node advertises.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Disposed in IAsyncLifetime.DisposeAsync.")]
public sealed class PrivateContentWatcherTests : IAsyncLifetime
{
    private UpstreamRegistry _registry = null!;
    private ContainerdInstance _containerd = null!;
    private ContainerdClient _client = null!;
    private TestImage _private = null!;
    private TestImage _public = null!;

    public async Task InitializeAsync()
    {
        _registry = await UpstreamRegistry.StartAsync();
        _containerd = await ContainerdInstance.StartAsync();
        _client = new ContainerdClient(PulledImagesFixture.ClientOptions(_containerd));
        var images = new TestImages(_registry);
        _private = await images.MultiLayerAsync("acme/secret");
        _public = await images.SingleLayerAsync("library/open");
        (await _containerd.PullAsync(_private.Reference)).EnsureSuccess();
        (await _containerd.PullAsync(_public.Reference)).EnsureSuccess();
    }

    public async Task DisposeAsync()
    {
        await _client.DisposeAsync();
        await _containerd.DisposeAsync();
        await _registry.DisposeAsync();
    }

    [Fact]
    public async Task ListAsync_PrivatePattern_LeavesPrivateImageOutAndKeepsPublicOne()
    {
        // containerd's source labels carry the registry host without its port (label keys cannot hold ':'), so a
        // pattern meant for a registry on a port matches with the port optional.
        var policy = new PrivateContentPolicy([@"^127\.0\.0\.1(:\d+)?/acme/"]);
        var watcher = new ContainerdContentWatcher(_client, policy);

        var images = await watcher.ListAsync(CancellationToken.None);

        var secret = Assert.Single(images, i => i.Name == _private.Reference);
        Assert.Empty(secret.Digests);
        Assert.Null(secret.TagReference);
        var open = Assert.Single(images, i => i.Name == _public.Reference);
        Assert.Equal(_public.NativeBlobs.Select(b => b.Digest.ToString()).Order(), open.Digests.Select(d => d.ToString()).Order());
        Assert.NotNull(open.TagReference);
    }

    [Fact]
    public async Task GetInfo_PulledBlob_CarriesTheSourceLabelThePolicyReads()
    {
        var layer = _private.NativeBlobs[^1].Digest;
        var info = await _client.GetContentInfoAsync(layer, CancellationToken.None);

        Assert.NotNull(info);
        Assert.Contains("127.0.0.1/acme/secret", PrivateContentPolicy.Sources(info.Labels));
        var local = new ContainerdLocalContent(_client, new PrivateContentPolicy([$"/acme/"]));
        Assert.True((await local.GetInfoAsync(layer, CancellationToken.None))!.IsPrivate);
    }

    [Fact]
    public async Task ListAsync_NoPattern_AdvertisesEverything()
    {
        var images = await new ContainerdContentWatcher(_client).ListAsync(CancellationToken.None);
        Assert.NotEmpty(Assert.Single(images, i => i.Name == _private.Reference).Digests);
    }
}
