using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Spegel.Core;
using Spegel.Core.Content;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Hosting;

namespace Spegel.Indexer.Tests;

/// <summary>The indexer's worker and outbox over the in-memory watcher, publishing into a list.</summary>
internal sealed class IndexerHarness : IAsyncDisposable
{
    private readonly CancellationTokenSource stop = new();

    public IndexerHarness(IndexerOptions? options = null)
    {
        Options = options ?? new IndexerOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(100), MaxBackoff = TimeSpan.FromMilliseconds(50) };
        var node = Microsoft.Extensions.Options.Options.Create(new NodeOptions { Name = "node-a", Address = "http://127.0.0.1:5000" });
        Outbox = new EventOutbox(Publisher, TimeProvider.System, Microsoft.Extensions.Options.Options.Create(Options), node, NullLogger<EventOutbox>.Instance);
        Worker = new IndexerWorker(Watcher, Outbox, TimeProvider.System, Microsoft.Extensions.Options.Options.Create(Options), NullLogger<IndexerWorker>.Instance);
    }

    public IndexerOptions Options { get; }

    public InMemoryContentWatcher Watcher { get; } = new();

    public RecordingPublisher Publisher { get; } = new();

    public EventOutbox Outbox { get; }

    public IndexerWorker Worker { get; }

    public static ImageContent Image(string tag, params byte[][] blobs)
    {
        var digests = blobs.Select(b => Digest.ComputeSha256(b)).ToList();
        return new ImageContent(tag, Reference.Parse(tag), digests[0], digests);
    }

    public async Task StartAsync()
    {
        await Outbox.StartAsync(stop.Token);
        await Worker.StartAsync(stop.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        await Worker.StopAsync(CancellationToken.None);
        await Outbox.StopAsync(CancellationToken.None);
        stop.Dispose();
    }

    public static async Task<T> EventuallyAsync<T>(Func<T?> probe, TimeSpan? timeout = null)
        where T : class
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(5));
        while (DateTime.UtcNow < deadline)
        {
            if (probe() is { } value)
            {
                return value;
            }

            await Task.Delay(10);
        }

        throw new TimeoutException("condition not met in time");
    }
}

internal sealed class RecordingPublisher : IContentEventPublisher
{
    private readonly ConcurrentQueue<ContentEvent> events = new();

    /// <summary>While set, publishing fails as if the resolver were down.</summary>
    public volatile bool Failing;

    public IReadOnlyList<ContentEvent> Events => events.ToArray();

    public IEnumerable<ContentEvent> ContentEvents => Events.Where(e => e is not NodeHeartbeat);

    public Task PublishAsync(ContentEvent contentEvent, CancellationToken cancellationToken = default)
    {
        if (Failing)
        {
            throw new HttpRequestException("resolver down");
        }

        events.Enqueue(contentEvent);
        return Task.CompletedTask;
    }
}
