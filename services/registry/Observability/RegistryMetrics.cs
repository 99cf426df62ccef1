using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Spegel.Hosting;

namespace Spegel.Registry.Observability;

/// <summary>Why a peer did not deliver: no answer in time, connection broken, an error status, or bytes not matching their digest.</summary>
public enum PeerFailureKind
{
    Timeout,
    Reset,
    Connect,
    Status,
    DigestMismatch,
}

/// <summary>
/// The registry's instruments, one <see cref="Meter"/> per host (from <see cref="IMeterFactory"/>). Names are the
/// Prometheus names as scraped, minus the suffixes the exporter adds (<c>_total</c> on counters, the unit on
/// histograms); docs/operations.md lists the scraped names.
/// </summary>
public sealed class RegistryMetrics : IPrimableMetrics
{
    public const string MeterName = "Spegel.Registry";

    /// <summary>Distinct <c>registry</c> label values kept; more fold into <c>other</c> (the label comes from requests).</summary>
    private const int MaxRegistries = 64;

    internal static readonly double[] SecondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Counter<long> requests;
    private readonly Counter<long> mirrorRequests;
    private readonly Counter<long> bytesToPeers;
    private readonly Counter<long> bytesFromPeers;
    private readonly Counter<long> bytesLocal;
    private readonly Counter<long> peerFailures;
    private readonly Histogram<double> resolveDuration;
    private readonly Histogram<double> timeToFirstByte;
    private readonly ConcurrentDictionary<string, byte> registries = new(StringComparer.Ordinal);

    public RegistryMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        requests = meter.CreateCounter<long>("spegel_registry_requests", "{request}", "Distribution API requests by handler (manifest, blob, v2, …), method and status.");
        mirrorRequests = meter.CreateCounter<long>("spegel_registry_mirror_requests", "{request}",
            "Manifest and blob requests of the node's containerd by upstream registry and outcome: local, peer, miss, filtered.");
        bytesToPeers = meter.CreateCounter<long>("spegel_registry_peer_served_bytes", "By", "Bytes this registry served to other nodes (requests carrying X-Spegel-Mirrored).");
        bytesFromPeers = meter.CreateCounter<long>("spegel_registry_peer_fetched_bytes", "By", "Bytes containerd got through this registry from other nodes.");
        bytesLocal = meter.CreateCounter<long>("spegel_registry_local_served_bytes", "By", "Bytes containerd got from this node's own content through this registry.");
        peerFailures = meter.CreateCounter<long>("spegel_registry_peer_failures", "{failure}",
            "Peers that did not deliver, by kind: timeout, reset, connect, status, digest_mismatch.");
        resolveDuration = meter.CreateHistogram("spegel_registry_resolve_duration", "s",
            "Time to ask the resolver which peers hold a key, by result: found, empty, error.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        timeToFirstByte = meter.CreateHistogram("spegel_registry_time_to_first_byte", "s",
            "Time from a containerd request to its response headers, by source: local, peer, miss.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
    }

    public void Prime()
    {
        foreach (var kind in Enum.GetValues<PeerFailureKind>())
        {
            peerFailures.Add(0, new KeyValuePair<string, object?>("kind", Label(kind)));
        }

        bytesToPeers.Add(0);
        bytesFromPeers.Add(0);
        bytesLocal.Add(0);
    }

    public void Request(string handler, string method, int status) =>
        requests.Add(1, new("handler", handler), new("method", HttpMethods.IsGet(method) ? "GET" : HttpMethods.IsHead(method) ? "HEAD" : "other"), new("status", status));

    public void MirrorOutcome(string registry, string outcome) =>
        mirrorRequests.Add(1, new("registry", Bounded(registry)), new("outcome", outcome));

    public void ServedToPeers(long bytes) => bytesToPeers.Add(bytes);

    public void FetchedFromPeers(long bytes) => bytesFromPeers.Add(bytes);

    public void ServedLocally(long bytes) => bytesLocal.Add(bytes);

    public void PeerFailed(PeerFailureKind kind, int count = 1)
    {
        if (count > 0)
        {
            peerFailures.Add(count, new KeyValuePair<string, object?>("kind", Label(kind)));
        }
    }

    public void Resolved(TimeSpan elapsed, string result) =>
        resolveDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("result", result));

    public void FirstByte(TimeSpan elapsed, string source) =>
        timeToFirstByte.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("source", source));

    /// <summary>Classifies a failed request to a peer: a timeout, a connection that could not be made, or one that broke.</summary>
    public static PeerFailureKind Classify(Exception exception) => exception switch
    {
        OperationCanceledException or TimeoutException => PeerFailureKind.Timeout,
        HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError } => PeerFailureKind.Connect,
        HttpRequestException { InnerException: TimeoutException or OperationCanceledException } => PeerFailureKind.Timeout,
        _ => PeerFailureKind.Reset,
    };

    public static string Label(PeerFailureKind kind) => kind switch
    {
        PeerFailureKind.Timeout => "timeout",
        PeerFailureKind.Reset => "reset",
        PeerFailureKind.Connect => "connect",
        PeerFailureKind.Status => "status",
        _ => "digest_mismatch",
    };

    private string Bounded(string registry)
    {
        if (registries.ContainsKey(registry))
        {
            return registry;
        }

        if (registries.Count >= MaxRegistries)
        {
            return "other";
        }

        registries.TryAdd(registry, 0);
        return registry;
    }
}
