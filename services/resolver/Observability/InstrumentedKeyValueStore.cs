using Spegel.Core.State;

namespace Spegel.Resolver.Observability;

/// <summary>The resolver's store, counting the conditional writes that lost a compare-and-swap race.</summary>
public sealed class InstrumentedKeyValueStore(IKeyValueStore inner, ResolverMetrics metrics) : IKeyValueStore
{
    public ValueTask<KeyValueEntry?> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

    public ValueTask<IReadOnlyDictionary<string, KeyValueEntry>> GetManyAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default) =>
        inner.GetManyAsync(keys, cancellationToken);

    public async ValueTask<bool> TrySaveAsync(string key, ReadOnlyMemory<byte> value, SaveCondition condition, TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
    {
        var saved = await inner.TrySaveAsync(key, value, condition, timeToLive, cancellationToken);
        if (!saved && condition.Kind != SaveConditionKind.None)
        {
            metrics.Conflict(RecordOf(key));
        }

        return saved;
    }

    public async ValueTask<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default)
    {
        var deleted = await inner.TryDeleteAsync(key, etag, cancellationToken);
        if (!deleted && etag is not null)
        {
            metrics.Conflict(RecordOf(key));
        }

        return deleted;
    }

    /// <summary>The record kind: the key's prefix before '|' (<c>digest</c>, <c>ref</c>, <c>node</c>, <c>held</c>, <c>members</c>).</summary>
    internal static string RecordOf(string key)
    {
        var bar = key.IndexOf('|', StringComparison.Ordinal);
        return bar > 0 && bar <= 16 ? key[..bar] : "other";
    }
}
