using System.Globalization;

namespace Spegel.Core.State;

/// <summary>
/// The in-memory twin of a Dapr state store (Standalone mode and tests): thread-safe, a new ETag on every write,
/// TTL measured with the injected <see cref="TimeProvider"/>, so tests can move time.
/// </summary>
public sealed class InMemoryKeyValueStore(TimeProvider timeProvider) : IKeyValueStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Item> _items = new(StringComparer.Ordinal);
    private long _version;

    public InMemoryKeyValueStore()
        : this(TimeProvider.System)
    {
    }

    /// <summary>How many live keys the store holds (for tests and diagnostics).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                var now = timeProvider.GetUtcNow();
                return _items.Values.Count(i => i.IsLive(now));
            }
        }
    }

    public ValueTask<KeyValueEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        ValidateKey(key);
        lock (_gate)
        {
            return ValueTask.FromResult(Live(key, timeProvider.GetUtcNow())?.Entry);
        }
    }

    public ValueTask<IReadOnlyDictionary<string, KeyValueEntry>> GetManyAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var found = new Dictionary<string, KeyValueEntry>(keys.Count, StringComparer.Ordinal);
        lock (_gate)
        {
            var now = timeProvider.GetUtcNow();
            foreach (var key in keys)
            {
                ValidateKey(key);
                if (Live(key, now) is { } item)
                {
                    found[key] = item.Entry;
                }
            }
        }

        return ValueTask.FromResult<IReadOnlyDictionary<string, KeyValueEntry>>(found);
    }

    public ValueTask<bool> TrySaveAsync(string key, ReadOnlyMemory<byte> value, SaveCondition condition, TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
    {
        ValidateKey(key);
        if (timeToLive is { } ttl && ttl <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeToLive), ttl, "A time to live must be positive.");
        }

        lock (_gate)
        {
            var now = timeProvider.GetUtcNow();
            var current = Live(key, now);
            var allowed = condition.Kind switch
            {
                SaveConditionKind.IfNotExists => current is null,
                SaveConditionKind.IfMatch => current is not null && string.Equals(current.Entry.ETag, condition.ETag, StringComparison.Ordinal),
                _ => true,
            };
            if (!allowed)
            {
                return ValueTask.FromResult(false);
            }

            // Like Dapr's ttlInSeconds: whole seconds, rounded up.
            DateTimeOffset? expiresAt = timeToLive is { } t ? now + TimeSpan.FromSeconds(Math.Ceiling(t.TotalSeconds)) : null;
            _items[key] = new Item(new KeyValueEntry(value.ToArray(), NextETag()), expiresAt);
            return ValueTask.FromResult(true);
        }
    }

    public ValueTask<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default)
    {
        ValidateKey(key);
        lock (_gate)
        {
            var current = Live(key, timeProvider.GetUtcNow());
            if (etag is not null && (current is null || !string.Equals(current.Entry.ETag, etag, StringComparison.Ordinal)))
            {
                return ValueTask.FromResult(false);
            }

            _items.Remove(key);
            return ValueTask.FromResult(true);
        }
    }

    private Item? Live(string key, DateTimeOffset now)
    {
        if (!_items.TryGetValue(key, out var item))
        {
            return null;
        }

        if (item.IsLive(now))
        {
            return item;
        }

        _items.Remove(key);
        return null;
    }

    private string NextETag() => (++_version).ToString(CultureInfo.InvariantCulture);

    private static void ValidateKey(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (key.Contains("||", StringComparison.Ordinal))
        {
            throw new ArgumentException($"Key '{key}' contains '||', which Dapr reserves as its key-prefix separator.", nameof(key));
        }
    }

    private sealed record Item(KeyValueEntry Entry, DateTimeOffset? ExpiresAt)
    {
        public bool IsLive(DateTimeOffset now) => ExpiresAt is not { } at || at > now;
    }
}
