using System.Diagnostics.Metrics;
using Spegel.Core.Content;
using Spegel.Core.Events;
using Spegel.Hosting;

namespace Spegel.Indexer.Observability;

/// <summary>
/// The indexer's instruments, one <see cref="Meter"/> per host (from <see cref="IMeterFactory"/>). The gauges read
/// the worker and the outbox at every scrape, so they move with the node's content; the counters count what
/// containerd reported and what was published. docs/operations.md lists the scraped names.
/// </summary>
public sealed class IndexerMetrics : IPrimableMetrics
{
    public const string MeterName = "Spegel.Indexer";

    private readonly Counter<long> imageEvents;
    private readonly Counter<long> published;
    private readonly Counter<long> publishFailures;

    public IndexerMetrics(IMeterFactory meterFactory, IndexerWorker worker, EventOutbox outbox)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(worker);
        ArgumentNullException.ThrowIfNull(outbox);
        var meter = meterFactory.Create(MeterName);
        meter.CreateObservableGauge("spegel_indexer_images", () => worker.Images, "{image}", "Images the node holds and advertises.");
        meter.CreateObservableGauge("spegel_indexer_digests", () => worker.Digests, "{digest}", "Distinct blobs and manifests the node advertises.");
        meter.CreateObservableGauge("spegel_indexer_tags", () => worker.Tags, "{tag}", "Tag references the node advertises.");
        meter.CreateObservableGauge("spegel_indexer_connected", () => worker.Connected ? 1 : 0, null, "1 while the indexer follows containerd.");
        meter.CreateObservableCounter("spegel_indexer_containerd_reconnects", () => (long)worker.Reconnects, "{reconnect}", "Times the connection to containerd was lost and retried.");
        meter.CreateObservableGauge("spegel_indexer_outbox_pending", () => outbox.Pending, "{event}", "Events queued and not yet accepted by the transport.");
        imageEvents = meter.CreateCounter<long>("spegel_indexer_image_events", "{event}", "Image events from containerd, by type: create, update, delete.");
        published = meter.CreateCounter<long>("spegel_indexer_published_events", "{event}", "Events the transport accepted, by kind: advertised, withdrawn, snapshot, heartbeat.");
        publishFailures = meter.CreateCounter<long>("spegel_indexer_publish_failures", "{failure}", "Publish attempts the transport refused or failed, by kind (retried).");
    }

    public void Prime()
    {
        foreach (var type in new[] { "create", "update", "delete" })
        {
            imageEvents.Add(0, new KeyValuePair<string, object?>("type", type));
        }

        foreach (var kind in new[] { ContentAdvertised.Kind, ContentWithdrawn.Kind, NodeSnapshot.Kind, NodeHeartbeat.Kind })
        {
            published.Add(0, new KeyValuePair<string, object?>("kind", kind));
            publishFailures.Add(0, new KeyValuePair<string, object?>("kind", kind));
        }
    }

    public void ImageEvent(ImageChangeKind kind) => imageEvents.Add(1, new KeyValuePair<string, object?>("type", kind switch
    {
        ImageChangeKind.Created => "create",
        ImageChangeKind.Updated => "update",
        _ => "delete",
    }));

    public void Published(ContentEvent contentEvent) => published.Add(1, new KeyValuePair<string, object?>("kind", Kind(contentEvent)));

    public void PublishFailed(ContentEvent contentEvent) => publishFailures.Add(1, new KeyValuePair<string, object?>("kind", Kind(contentEvent)));

    private static string Kind(ContentEvent contentEvent) => contentEvent switch
    {
        ContentAdvertised => ContentAdvertised.Kind,
        ContentWithdrawn => ContentWithdrawn.Kind,
        NodeSnapshot => NodeSnapshot.Kind,
        NodeHeartbeat => NodeHeartbeat.Kind,
        _ => "unknown",
    };
}
