using System.Collections.Concurrent;
using Spegel.Core.State;

namespace Spegel.Resolver.Tests;

/// <summary>Counts the calls made to a store, the keys read, and how many conditional writes lost their race.</summary>
public sealed class CountingKeyValueStore(IKeyValueStore inner) : IKeyValueStore
{
    private readonly ConcurrentDictionary<string, long> _keyReads = new(StringComparer.Ordinal);
    private long _reads;
    private long _writes;
    private long _lost;

    public long Reads => Interlocked.Read(ref _reads);

    public long Writes => Interlocked.Read(ref _writes);

    public long LostRaces => Interlocked.Read(ref _lost);

    /// <summary>How many times keys starting with <paramref name="prefix"/> were read (each key of a bulk read counts).</summary>
    public long KeyReads(string prefix) => _keyReads.Where(r => r.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(r => r.Value);

    public ValueTask<KeyValueEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _reads);
        _keyReads.AddOrUpdate(key, 1, static (_, n) => n + 1);
        return inner.GetAsync(key, cancellationToken);
    }

    public ValueTask<IReadOnlyDictionary<string, KeyValueEntry>> GetManyAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        Interlocked.Increment(ref _reads);
        foreach (var key in keys)
        {
            _keyReads.AddOrUpdate(key, 1, static (_, n) => n + 1);
        }

        return inner.GetManyAsync(keys, cancellationToken);
    }

    public async ValueTask<bool> TrySaveAsync(string key, ReadOnlyMemory<byte> value, SaveCondition condition, TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _writes);
        var saved = await inner.TrySaveAsync(key, value, condition, timeToLive, cancellationToken);
        if (!saved)
        {
            Interlocked.Increment(ref _lost);
        }

        return saved;
    }

    public async ValueTask<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _writes);
        var deleted = await inner.TryDeleteAsync(key, etag, cancellationToken);
        if (!deleted)
        {
            Interlocked.Increment(ref _lost);
        }

        return deleted;
    }
}
