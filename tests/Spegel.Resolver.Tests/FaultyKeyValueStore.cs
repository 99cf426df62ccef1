using Spegel.Core.State;

namespace Spegel.Resolver.Tests;

/// <summary>What <see cref="FaultyKeyValueStore"/> does to writes.</summary>
public enum StoreFault
{
    /// <summary>Every conditional write loses its race, as if another writer always got there first.</summary>
    AlwaysLoseRace,

    /// <summary>Every write throws, as a store that is down or refuses the call.</summary>
    Throw,
}

/// <summary>Reads go to the inner store; writes fail as <see cref="StoreFault"/> says, and are counted.</summary>
public sealed class FaultyKeyValueStore(IKeyValueStore inner, StoreFault fault) : IKeyValueStore
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _writesByKey = new(StringComparer.Ordinal);
    private long _writes;

    /// <summary>Write attempts (saves and deletes) made so far.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Write attempts per key.</summary>
    public IReadOnlyDictionary<string, int> WritesByKey => new Dictionary<string, int>(_writesByKey, StringComparer.Ordinal);

    public ValueTask<KeyValueEntry?> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

    public ValueTask<IReadOnlyDictionary<string, KeyValueEntry>> GetManyAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default) =>
        inner.GetManyAsync(keys, cancellationToken);

    public ValueTask<bool> TrySaveAsync(string key, ReadOnlyMemory<byte> value, SaveCondition condition, TimeSpan? timeToLive = null, CancellationToken cancellationToken = default) =>
        Fail(key);

    public ValueTask<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default) => Fail(key);

    private ValueTask<bool> Fail(string key)
    {
        Interlocked.Increment(ref _writes);
        _writesByKey.AddOrUpdate(key, 1, static (_, n) => n + 1);
        return fault == StoreFault.Throw
            ? ValueTask.FromException<bool>(new InvalidOperationException($"state store unavailable (test fault) writing {key}"))
            : ValueTask.FromResult(false);
    }
}

/// <summary>System time, recording the due time of every timer created (each <c>Task.Delay</c> on this provider).</summary>
public sealed class DelayRecordingTimeProvider : TimeProvider
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<TimeSpan> _delays = new();

    public IReadOnlyList<TimeSpan> Delays => [.. _delays];

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        _delays.Enqueue(dueTime);
        return base.CreateTimer(callback, state, dueTime, period);
    }
}
