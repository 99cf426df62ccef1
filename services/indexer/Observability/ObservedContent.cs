using System.Runtime.CompilerServices;
using Spegel.Core.Content;
using Spegel.Core.Events;
using Spegel.Core.State;

namespace Spegel.Indexer.Observability;

/// <summary>The watcher the worker follows, counting containerd's image events by type as they pass.</summary>
public sealed class ObservedContentWatcher(IContentWatcher inner, Func<IndexerMetrics> metrics) : IContentWatcher
{
    public async IAsyncEnumerable<ImageChange> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var change in inner.WatchAsync(cancellationToken).WithCancellation(cancellationToken))
        {
            metrics().ImageEvent(change.Kind);
            yield return change;
        }
    }

    public Task<IReadOnlyList<ImageContent>> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

    public Task<ImageContent?> GetAsync(string name, CancellationToken cancellationToken) => inner.GetAsync(name, cancellationToken);
}

/// <summary>The outbox's transport, counting what it accepted and refused by event kind.</summary>
public sealed class ObservedContentEventPublisher(IContentEventPublisher inner, Func<IndexerMetrics> metrics) : IContentEventPublisher
{
    public async Task PublishAsync(ContentEvent contentEvent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(contentEvent);
        try
        {
            await inner.PublishAsync(contentEvent, cancellationToken);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            metrics().PublishFailed(contentEvent);
            throw;
        }

        metrics().Published(contentEvent);
    }
}
