using Microsoft.Extensions.Options;
using Spegel.Core;
using Spegel.Core.Content;
using Spegel.Core.Events;

namespace Spegel.Indexer;

/// <summary>
/// Follows the node's containerd: a full snapshot at start and after every reconnect (content deleted while the
/// indexer was away is withdrawn by it), then one advertise or withdraw per image event, a periodic resync that
/// heals anything lost, and heartbeats while containerd is reachable.
/// </summary>
public sealed partial class IndexerWorker(
    IContentWatcher watcher,
    EventOutbox outbox,
    TimeProvider time,
    IOptions<IndexerOptions> options,
    ILogger<IndexerWorker> logger,
    RegistryProbe? registry = null) : BackgroundService
{
    private readonly NodeContentIndex index = new();
    private readonly IndexerOptions options = options.Value;
    private volatile bool connected;
    private int reconnects;

    public bool Connected => connected;

    public int Images => index.ImageCount;

    public int Digests => index.DigestCount;

    public int Reconnects => reconnects;

    public int Tags { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var heartbeats = HeartbeatLoopAsync(stoppingToken);
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await FollowAsync(() => backoff = TimeSpan.FromMilliseconds(100), stoppingToken);
            }
            catch (ContentStoreUnavailableException ex)
            {
                connected = false;
                Interlocked.Increment(ref reconnects);
                LogDisconnected(ex.Message, backoff.TotalMilliseconds);
                try
                {
                    await Task.Delay(backoff, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, options.MaxBackoff.Ticks));
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Anything unexpected: log it and start over with a resync rather than stopping the service.
                connected = false;
                LogUnexpected(ex);
                try
                {
                    await Task.Delay(options.MaxBackoff, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        await heartbeats;
    }

    private async Task FollowAsync(Action onConnected, CancellationToken cancellationToken)
    {
        using var watch = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var changes = watcher.WatchAsync(watch.Token).GetAsyncEnumerator(watch.Token);
        Task<bool>? next = null;
        try
        {
            // Start the subscription before listing, so an image created during the listing is not missed.
            next = changes.MoveNextAsync().AsTask();
            await ResyncAsync(cancellationToken);
            connected = true;
            onConnected();

            var resyncDue = Task.Delay(options.ResyncInterval, time, cancellationToken);
            while (true)
            {
                var done = await Task.WhenAny(next, resyncDue);
                if (done == resyncDue)
                {
                    await resyncDue;
                    await ResyncAsync(cancellationToken);
                    resyncDue = Task.Delay(options.ResyncInterval, time, cancellationToken);
                    continue;
                }

                if (!await next)
                {
                    throw new ContentStoreUnavailableException("the image event stream ended");
                }

                await ApplyAsync(changes.Current, cancellationToken);
                next = changes.MoveNextAsync().AsTask();
            }
        }
        finally
        {
            // An async iterator cannot be disposed while a MoveNext is pending: cancel it and let it finish first.
            await watch.CancelAsync();
            if (next is not null)
            {
                try
                {
                    await next;
                }
                catch (Exception ex) when (ex is OperationCanceledException or ContentStoreUnavailableException)
                {
                    // Expected: the watch was cancelled or the connection is gone.
                }
            }

            await changes.DisposeAsync();
        }
    }

    private async Task ResyncAsync(CancellationToken cancellationToken)
    {
        var images = await watcher.ListAsync(cancellationToken);
        var change = index.ReplaceAll(images);
        var bindings = index.Images.Select(Binding).OfType<TagBinding>().ToList();
        Tags = bindings.Count;
        outbox.Snapshot(bindings, index.Digests.ToList());
        LogResynced(index.ImageCount, index.DigestCount, bindings.Count, change.Added.Count, change.Removed.Count);
    }

    private async Task ApplyAsync(ImageChange change, CancellationToken cancellationToken)
    {
        var image = change.Kind == ImageChangeKind.Deleted ? null : await watcher.GetAsync(change.Name, cancellationToken);
        if (image is null)
        {
            var removal = index.Remove(change.Name);
            if (removal.IsEmpty)
            {
                return;
            }

            var tags = removal.TagsRemoved.Select(ContentKey.ForTag).ToList();
            outbox.Withdraw(tags, removal.Removed);
            LogKeys(tags, removal.Removed, "DELETE");
        }
        else
        {
            var update = index.Put(image);
            var binding = Binding(image);
            outbox.Advertise(binding is null ? [] : [binding], image.Digests);
            if (update.Removed.Count > 0)
            {
                outbox.Withdraw([], update.Removed);
            }

            LogKeys(binding is null ? [] : [binding.Reference], update.Added, change.Kind == ImageChangeKind.Created ? "CREATE" : "UPDATE");
            LogKeys([], update.Removed, "DELETE");
        }

        Tags = index.Images.Count(i => i.TagReference is not null);
    }

    private static TagBinding? Binding(ImageContent image) =>
        image.TagReference is { } tag ? new TagBinding(ContentKey.ForTag(tag), image.Target.ToString()) : null;

    private void LogKeys(IEnumerable<string> tags, IEnumerable<Digest> digests, string type)
    {
        foreach (var tag in tags)
        {
            LogOciEvent(tag, type);
        }

        foreach (var digest in digests)
        {
            var key = digest.ToString();
            LogOciEvent(key, type);
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.HeartbeatInterval, time);
        try
        {
            do
            {
                // A node whose containerd or registry is away cannot serve: stay silent so resolvers stop offering it.
                if (connected && (registry is null || await registry.IsServingAsync(cancellationToken)))
                {
                    await outbox.HeartbeatAsync(cancellationToken);
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "OCI event {key} {type}")]
    private partial void LogOciEvent(string key, string type);

    [LoggerMessage(Level = LogLevel.Information, Message = "resynced {images} {digests} {tags} {added} {removed}")]
    private partial void LogResynced(int images, int digests, int tags, int added, int removed);

    [LoggerMessage(Level = LogLevel.Error, Message = "indexer failed, resyncing")]
    private partial void LogUnexpected(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "containerd unavailable, reconnecting {error} {backoffMs}")]
    private partial void LogDisconnected(string error, double backoffMs);
}
