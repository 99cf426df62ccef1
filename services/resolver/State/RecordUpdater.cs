using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Spegel.Core.State;

namespace Spegel.Resolver.State;

/// <summary>How an update of one key ended.</summary>
public enum UpdateOutcome
{
    /// <summary>The mutation changed the record and the write won.</summary>
    Committed,

    /// <summary>The mutation found nothing to change (a duplicate or older event); nothing was written.</summary>
    Unchanged,

    /// <summary>Other writers kept winning until the time or attempt budget ran out; nothing was written.</summary>
    Contended,
}

/// <summary>The compare-and-swap budget of one update.</summary>
public sealed record UpdatePolicy(TimeSpan Timeout, int MaxAttempts)
{
    /// <summary>First backoff after a lost race; doubles per attempt, with full jitter, up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan BaseBackoff { get; init; } = TimeSpan.FromMilliseconds(2);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMilliseconds(100);
}

/// <summary>
/// Read-modify-write of JSON records with ETag compare-and-swap, coalesced per key: concurrent updates of the same
/// key in this process queue behind one writer, which applies every queued mutation to one read and writes once.
/// So N local writers cost one round trip per attempt, not N, and only writers in other processes race each
/// other. A lost race is retried after a jittered exponential backoff until the update's budget runs out.
/// Mutations must be pure functions of the record they are given: they are re-applied after every lost race.
/// </summary>
public sealed class RecordUpdater<T>
    where T : class, IStateRecord, new()
{
    private readonly ConcurrentDictionary<string, KeyQueue> _queues = new(StringComparer.Ordinal);
    private readonly IKeyValueStore _store;
    private readonly JsonTypeInfo<T> _typeInfo;
    private readonly TimeProvider _time;
    private readonly UpdatePolicy _policy;
    private readonly TimeSpan? _timeToLive;
    private readonly Action<T, DateTimeOffset>? _compact;

    /// <param name="compact">Applied to a record before every write it gets anyway (garbage collection that never causes a write of its own).</param>
    public RecordUpdater(IKeyValueStore store, JsonTypeInfo<T> typeInfo, TimeProvider time, UpdatePolicy policy, TimeSpan? timeToLive = null, Action<T, DateTimeOffset>? compact = null)
    {
        _store = store;
        _typeInfo = typeInfo;
        _time = time;
        _policy = policy;
        _timeToLive = timeToLive;
        _compact = compact;
    }

    /// <summary>Applies <paramref name="mutate"/> (true when it changed the record) to the record at <paramref name="key"/>, created empty when missing.</summary>
    public Task<UpdateOutcome> UpdateAsync(string key, Func<T, bool> mutate)
    {
        ArgumentNullException.ThrowIfNull(mutate);
        var pending = new Pending(mutate, _time.GetTimestamp());
        while (true)
        {
            var queue = _queues.GetOrAdd(key, static _ => new KeyQueue());
            bool lead;
            lock (queue)
            {
                if (queue.Retired)
                {
                    continue;
                }

                queue.Items.Add(pending);
                lead = !queue.Leading;
                queue.Leading = true;
            }

            if (lead)
            {
                _ = Task.Run(() => LeadAsync(key, queue));
            }

            return pending.Completion.Task;
        }
    }

    /// <summary>
    /// Updates several keys with one bulk read: each changed record is written with its ETag, and only a key whose
    /// write loses a race (or fails) goes the coalesced <see cref="UpdateAsync"/> way. Meant for keys that are rarely
    /// contended (one node's index), where the per-key read is the main cost.
    /// </summary>
    public async Task<UpdateOutcome> UpdateManyAsync(IReadOnlyDictionary<string, Func<T, bool>> mutations)
    {
        ArgumentNullException.ThrowIfNull(mutations);
        if (mutations.Count == 0)
        {
            return UpdateOutcome.Unchanged;
        }

        var reads = await _store.GetManyAsync([.. mutations.Keys]);
        var outcomes = await Task.WhenAll(mutations.Select(async pair =>
        {
            reads.TryGetValue(pair.Key, out var read);
            var record = read is null ? new T() : Deserialize(read);
            if (!pair.Value(record))
            {
                return UpdateOutcome.Unchanged;
            }

            return await WriteAsync(pair.Key, read, record) ? UpdateOutcome.Committed : await UpdateAsync(pair.Key, pair.Value);
        }));
        return outcomes.Contains(UpdateOutcome.Contended) ? UpdateOutcome.Contended
            : outcomes.Contains(UpdateOutcome.Committed) ? UpdateOutcome.Committed
            : UpdateOutcome.Unchanged;
    }

    /// <summary>Reads and deserializes a record; null when missing.</summary>
    public async ValueTask<T?> ReadAsync(string key, CancellationToken cancellationToken = default)
    {
        var entry = await _store.GetAsync(key, cancellationToken);
        return entry is null ? null : Deserialize(entry);
    }

    public T Deserialize(KeyValueEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return entry.Value.IsEmpty ? new T() : JsonSerializer.Deserialize(entry.Value.Span, _typeInfo) ?? new T();
    }

    private async Task LeadAsync(string key, KeyQueue queue)
    {
        var batch = new List<Pending>();
        var attempt = 0;
        while (true)
        {
            lock (queue)
            {
                batch.AddRange(queue.Items);
                queue.Items.Clear();
                if (batch.Count == 0)
                {
                    queue.Leading = false;
                    queue.Retired = true;
                    _queues.TryRemove(new KeyValuePair<string, KeyQueue>(key, queue));
                    return;
                }
            }

            try
            {
                var read = await _store.GetAsync(key);
                var record = read is null ? new T() : Deserialize(read);
                var changed = false;
                foreach (var pending in batch)
                {
                    changed |= pending.Mutate(record);
                }

                var won = !changed || await WriteAsync(key, read, record);
                if (won)
                {
                    foreach (var pending in batch)
                    {
                        pending.Completion.TrySetResult(changed ? UpdateOutcome.Committed : UpdateOutcome.Unchanged);
                    }

                    batch.Clear();
                    attempt = 0;
                    continue;
                }

                attempt++;
                batch.RemoveAll(pending =>
                {
                    pending.Attempts++;
                    if (pending.Attempts < _policy.MaxAttempts && _time.GetElapsedTime(pending.Started) < _policy.Timeout)
                    {
                        return false;
                    }

                    pending.Completion.TrySetResult(UpdateOutcome.Contended);
                    return true;
                });
                await Task.Delay(Backoff(attempt), _time);
            }
            catch (Exception ex)
            {
                // The store failed (or a record could not be read): every update in the batch fails with it.
                foreach (var pending in batch)
                {
                    pending.Completion.TrySetException(ex);
                }

                batch.Clear();
                attempt = 0;
            }
        }
    }

    private async ValueTask<bool> WriteAsync(string key, KeyValueEntry? read, T record)
    {
        _compact?.Invoke(record, _time.GetUtcNow());
        if (record.IsEmpty)
        {
            return read is null || await _store.TryDeleteAsync(key, read.ETag);
        }

        var bytes = JsonSerializer.SerializeToUtf8Bytes(record, _typeInfo);
        return await _store.TrySaveAsync(key, bytes, SaveCondition.After(read), _timeToLive);
    }

    private TimeSpan Backoff(int attempt)
    {
        // Full jitter: uniform in [0, min(cap, base * 2^attempt)).
        var ceiling = Math.Min(_policy.MaxBackoff.TotalMilliseconds, _policy.BaseBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16)));
        return TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * ceiling);
    }

    private sealed class KeyQueue
    {
        public List<Pending> Items { get; } = [];

        public bool Leading { get; set; }

        public bool Retired { get; set; }
    }

    private sealed class Pending(Func<T, bool> mutate, long started)
    {
        public Func<T, bool> Mutate { get; } = mutate;

        public long Started { get; } = started;

        public int Attempts { get; set; }

        public TaskCompletionSource<UpdateOutcome> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
