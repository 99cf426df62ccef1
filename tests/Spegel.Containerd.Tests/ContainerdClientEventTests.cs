using Spegel.TestRig;

namespace Spegel.Containerd.Tests;

/// <summary>The image event stream against a real containerd, driven by ctr.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Disposed in IAsyncLifetime.DisposeAsync.")]
public sealed class ContainerdClientEventTests : IAsyncLifetime
{
    private static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(15);

    private UpstreamRegistry _registry = null!;
    private ContainerdInstance _containerd = null!;
    private ContainerdClient _client = null!;
    private TestImage _seed = null!;
    private TestImages _images = null!;

    public async Task InitializeAsync()
    {
        var registry = UpstreamRegistry.StartAsync();
        var containerd = ContainerdInstance.StartAsync();
        _registry = await registry;
        _containerd = await containerd;
        _client = new ContainerdClient(PulledImagesFixture.ClientOptions(_containerd));
        _images = new TestImages(_registry);

        // An image to tag sentinels from, pulled before anyone subscribes.
        _seed = await _images.SingleLayerAsync();
        (await _containerd.PullAsync(_seed.Reference)).EnsureSuccess();
    }

    public async Task DisposeAsync()
    {
        await _client.DisposeAsync();
        await _containerd.DisposeAsync();
        await _registry.DisposeAsync();
    }

    [Fact]
    public async Task SubscribeImageEventsAsync_PullThenRemove_YieldsCreateThenDelete()
    {
        var image = await _images.MultiLayerAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        await using var events = _client.SubscribeImageEventsAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        await EstablishAsync(events, cts.Token);

        (await _containerd.PullAsync(image.Reference, ct: cts.Token)).EnsureSuccess();
        (await _containerd.RemoveImageAsync(image.Reference, cts.Token)).EnsureSuccess();

        var seen = await CollectUntilAsync(events, e => e.Name == image.Reference && e.Type == ImageEventType.Delete);
        var forImage = seen.Where(e => e.Name == image.Reference).ToList();
        Assert.Equal(ImageEventType.Create, forImage[0].Type);
        Assert.Equal(ImageEventType.Delete, forImage[^1].Type);
        Assert.All(forImage[1..^1], e => Assert.Equal(ImageEventType.Update, e.Type));
        Assert.True(forImage[^1].Timestamp >= forImage[0].Timestamp);
        Assert.True(forImage[0].Timestamp > DateTimeOffset.UtcNow.AddMinutes(-5), $"timestamp {forImage[0].Timestamp}");
    }

    [Fact]
    public async Task SubscribeImageEventsAsync_ImageInOtherNamespace_IsNotDelivered()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        await using var events = _client.SubscribeImageEventsAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        await EstablishAsync(events, cts.Token);

        // Pull into another namespace, then make one more event here: everything before it was delivered by then.
        (await _containerd.CtrAsync(["images", "pull", "--plain-http", "--snapshotter", _containerd.Snapshotter, _seed.Reference], @namespace: "other", ct: cts.Token)).EnsureSuccess();
        var marker = $"{_seed.Registry}/{_seed.Repository}:marker";
        (await _containerd.CtrAsync(["images", "tag", _seed.Reference, marker], ct: cts.Token)).EnsureSuccess();

        var seen = await CollectUntilAsync(events, e => e.Name == marker);
        Assert.DoesNotContain(seen, e => e.Name == _seed.Reference);
    }

    [Fact]
    public async Task SubscribeImageEventsAsync_ImageUpdated_YieldsUpdate()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        await using var events = _client.SubscribeImageEventsAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        await EstablishAsync(events, cts.Token);

        // containerd's images service Update (as CRI does when it re-tags an existing name).
        (await _containerd.CtrAsync(["images", "label", _seed.Reference, "spegel.test/touched=yes"], ct: cts.Token)).EnsureSuccess();

        var seen = await CollectUntilAsync(events, e => e.Name == _seed.Reference);
        Assert.Equal(ImageEventType.Update, seen[^1].Type);
        Assert.Equal("yes", (await _client.GetImageAsync(_seed.Reference, cts.Token))!.Labels["spegel.test/touched"]);
    }

    [Fact]
    public async Task SubscribeImageEventsAsync_ContainerdKilled_ThrowsUnavailable()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        await using var events = _client.SubscribeImageEventsAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        await EstablishAsync(events, cts.Token);

        await _containerd.KillAsync();

        var next = events.MoveNextAsync().AsTask();
        Assert.Same(next, await Task.WhenAny(next, Task.Delay(EventTimeout, cts.Token)));
        var ex = await Assert.ThrowsAsync<ContainerdUnavailableException>(() => next);
        Assert.Contains(_containerd.Socket, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubscribeImageEventsAsync_Cancelled_EndsWithOperationCanceled()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        await using var events = _client.SubscribeImageEventsAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        await EstablishAsync(events, cts.Token);

        var next = events.MoveNextAsync().AsTask();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => next);
    }

    /// <summary>
    /// Proves the subscription is live before the test acts: containerd only delivers events published after it
    /// registered the subscriber, and nothing else tells when that happened. Tags sentinel names until one arrives.
    /// </summary>
    private async Task EstablishAsync(IAsyncEnumerator<ImageEvent> events, CancellationToken ct)
    {
        var prefix = $"{_seed.Registry}/sentinel/{Guid.NewGuid():N}:";
        var next = events.MoveNextAsync().AsTask();
        for (var i = 0; ; i++)
        {
            (await _containerd.CtrAsync(["images", "tag", _seed.Reference, prefix + i], ct: ct)).EnsureSuccess();
            await Task.WhenAny(next, Task.Delay(TimeSpan.FromMilliseconds(200), ct));
            while (next.IsCompleted)
            {
                Assert.True(await next, "event stream ended");
                if (events.Current.Name.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return;
                }

                next = events.MoveNextAsync().AsTask();
            }

            Assert.True(i < 50, "the subscription never delivered a sentinel event");
        }
    }

    private static async Task<List<ImageEvent>> CollectUntilAsync(IAsyncEnumerator<ImageEvent> events, Func<ImageEvent, bool> last)
    {
        var seen = new List<ImageEvent>();
        using var deadline = new CancellationTokenSource(EventTimeout);
        while (true)
        {
            var next = events.MoveNextAsync().AsTask();
            if (await Task.WhenAny(next, Task.Delay(Timeout.Infinite, deadline.Token)) != next)
            {
                throw new TimeoutException($"no matching event within {EventTimeout.TotalSeconds} s; saw: {string.Join(", ", seen)}");
            }

            Assert.True(await next, "event stream ended");
            seen.Add(events.Current);
            if (last(events.Current))
            {
                return seen;
            }
        }
    }
}
