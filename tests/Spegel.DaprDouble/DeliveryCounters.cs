namespace Spegel.DaprDouble;

/// <summary>A snapshot of pub/sub activity.</summary>
/// <param name="Published">Messages accepted by PublishEvent / BulkPublishEvent.</param>
/// <param name="Delivered">Deliveries the app acknowledged (2xx with empty body, no status or SUCCESS).</param>
/// <param name="Retried">Delivery attempts that were retried (RETRY, unknown status, non-2xx other than 404, app unreachable).</param>
/// <param name="Dropped">Messages dropped on the app's word (DROP, 404), with no matching route, or expired.</param>
/// <param name="Exhausted">Messages given up after the last retry (sent to the dead-letter topic when the subscription names one).</param>
public readonly record struct DeliveryCounters(long Published, long Delivered, long Retried, long Dropped, long Exhausted);

/// <summary>Thread-safe counters behind <see cref="DeliveryCounters"/>.</summary>
internal sealed class CounterSet
{
    private long _published;
    private long _delivered;
    private long _retried;
    private long _dropped;
    private long _exhausted;

    public void Published() => Interlocked.Increment(ref _published);

    public void Delivered() => Interlocked.Increment(ref _delivered);

    public void Retried() => Interlocked.Increment(ref _retried);

    public void Dropped() => Interlocked.Increment(ref _dropped);

    public void Exhausted() => Interlocked.Increment(ref _exhausted);

    public DeliveryCounters Snapshot() => new(
        Interlocked.Read(ref _published),
        Interlocked.Read(ref _delivered),
        Interlocked.Read(ref _retried),
        Interlocked.Read(ref _dropped),
        Interlocked.Read(ref _exhausted));
}
