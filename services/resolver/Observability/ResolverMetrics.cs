using System.Diagnostics.Metrics;
using Spegel.Hosting;

namespace Spegel.Resolver.Observability;

/// <summary>
/// The resolver's instruments, one <see cref="Meter"/> per host (from <see cref="IMeterFactory"/>).
/// docs/operations.md lists the scraped names.
/// </summary>
public sealed class ResolverMetrics : IPrimableMetrics
{
    public const string MeterName = "Spegel.Resolver";

    private static readonly double[] SecondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

    private readonly Counter<long> events;
    private readonly Counter<long> conflicts;
    private readonly Histogram<double> lookupDuration;
    private int liveNodes;
    private int knownNodes;

    public ResolverMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        events = meter.CreateCounter<long>("spegel_resolver_events", "{event}",
            "Content events received, by kind (advertised, withdrawn, snapshot, heartbeat) and outcome (applied, unchanged, retried, dropped).");
        conflicts = meter.CreateCounter<long>("spegel_resolver_cas_conflicts", "{conflict}",
            "Compare-and-swap writes that lost to another writer (then retried), by record: digest, ref, node, held, members.");
        lookupDuration = meter.CreateHistogram("spegel_resolver_lookup_duration", "s",
            "Time to answer GET /v1/peers, by key kind (digest, tag) and result (found, empty, invalid).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        meter.CreateObservableGauge("spegel_resolver_live_nodes", () => Volatile.Read(ref liveNodes), "{node}",
            "Nodes heard from within Spegel:Resolver:NodeTimeout (refreshed every Spegel:Ui:RefreshInterval).");
        meter.CreateObservableGauge("spegel_resolver_known_nodes", () => Volatile.Read(ref knownNodes), "{node}",
            "Nodes with a record in the state store, alive or not.");
    }

    public void Prime()
    {
        foreach (var kind in new[] { "advertised", "withdrawn", "snapshot", "heartbeat" })
        {
            foreach (var outcome in new[] { EventObserver.Applied, EventObserver.Unchanged, EventObserver.Retried, EventObserver.Dropped })
            {
                events.Add(0, new("kind", kind), new("outcome", outcome));
            }
        }

        foreach (var record in new[] { "digest", "ref", "node", "held", "members" })
        {
            conflicts.Add(0, new KeyValuePair<string, object?>("record", record));
        }
    }

    public void Event(string? kind, string outcome) =>
        events.Add(1, new("kind", kind ?? "unknown"), new("outcome", outcome));

    public void Conflict(string record) => conflicts.Add(1, new KeyValuePair<string, object?>("record", record));

    public void Lookup(TimeSpan elapsed, string kind, string result) =>
        lookupDuration.Record(elapsed.TotalSeconds, new("kind", kind), new("result", result));

    public void Nodes(int live, int known)
    {
        Volatile.Write(ref liveNodes, live);
        Volatile.Write(ref knownNodes, known);
    }
}
