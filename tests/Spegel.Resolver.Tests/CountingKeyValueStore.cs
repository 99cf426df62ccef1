using Spegel.Core.State;

namespace Spegel.Resolver.Tests;

/// <summary>Counts the calls made to a store and how many conditional writes lost their race.</summary>
public sealed class CountingKeyValueStore(IKeyValueStore inner) : IKeyValueStore
{
    private long _reads;
    private long _writes;
    private long _lost;

    public long Reads => Interlocked.Read(ref _reads);

    public long Writes => Interlocked.Read(ref _writes);

    public long LostRaces => Interlocked.Read(ref _lost);

    public ValueTask<KeyValueEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _reads);
        return inner.GetAsync(key, cancellationToken);
    }

    public ValueTask<IReadOnlyDictionary<string, KeyValueEntry>> GetManyAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _reads);
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
