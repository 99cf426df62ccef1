using System.Collections.Concurrent;
using Spegel.Core.Events;

namespace Spegel.Resolver.State;

/// <summary>What a lookup needs of a node's record: where peers go, when it was last heard from, its snapshot floor.</summary>
public readonly record struct NodeLiveness(string Address, long LastSeen, EventStamp LastStamp, EventStamp Floor)
{
    public static NodeLiveness Of(NodeRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return new(record.Address, record.LastSeen, record.LastStamp, record.Floor);
    }

    /// <summary>
    /// Two reads of one node combined. In the store the stamp, the last-seen time and the floor only ever grow, and the
    /// address only changes with a newer stamp, so the larger of each is the newer: merging in any order, an older
    /// read can never undo a newer one (a withdrawn floor or a later heartbeat cannot go back).
    /// </summary>
    public NodeLiveness Merge(NodeLiveness other)
    {
        var newer = other.LastStamp > LastStamp;
        return new(
            newer ? other.Address : Address,
            Math.Max(LastSeen, other.LastSeen),
            newer ? other.LastStamp : LastStamp,
            other.Floor > Floor ? other.Floor : Floor);
    }
}

/// <summary>
/// This resolver's in-memory copy of the node records lookups need, so a lookup does not read every holder's record
/// from the store (at 1,000 nodes that was three quarters of a lookup's time and most of its garbage; see
/// docs/resolver.md, "Liveness view"). The store stays the durable, shared copy:
/// <list type="bullet">
/// <item>this instance's own node-record writes (heartbeats, any event, snapshot floors) are merged in as they commit;</item>
/// <item>every node in the view is re-read from the store in bulk once it is older than the refresh interval, before the
/// next lookup uses it, so other replicas' writes are seen within that interval;</item>
/// <item>a node the view does not know yet is read from the store by the lookup that names it.</item>
/// </list>
/// Liveness itself is computed at lookup time from <c>lastSeen</c>, and a stale copy can only hold an older
/// <c>lastSeen</c>: a silent node still drops out at <c>NodeTimeout</c>, never later.
/// </summary>
public sealed class NodeLivenessView
{
    private readonly ConcurrentDictionary<string, NodeLiveness?> _nodes = new(StringComparer.Ordinal);
    private readonly Func<IReadOnlyCollection<string>, CancellationToken, Task<IReadOnlyDictionary<string, NodeRecord>>> _read;
    private readonly TimeProvider _time;
    private readonly long _refreshMs;
    private readonly long _timeoutMs;
    private readonly Lock _gate = new();
    private long _refreshedAt;
    private long _refreshes;
    private Task? _refreshing;

    /// <param name="read">Bulk read of node records by name (missing ones absent from the result).</param>
    public NodeLivenessView(
        Func<IReadOnlyCollection<string>, CancellationToken, Task<IReadOnlyDictionary<string, NodeRecord>>> read,
        TimeProvider time,
        TimeSpan refresh,
        TimeSpan nodeTimeout)
    {
        _read = read;
        _time = time;
        _refreshMs = Math.Max(1L, (long)refresh.TotalMilliseconds);
        _timeoutMs = (long)nodeTimeout.TotalMilliseconds;
    }

    /// <summary>How many whole-view refreshes from the store have run.</summary>
    public long Refreshes => Interlocked.Read(ref _refreshes);

    /// <summary>
    /// Makes the view answer for <paramref name="names"/>: refreshes the whole view first when it is older than the
    /// refresh interval (one refresh however many lookups wait for it), then reads the names it has never seen.
    /// </summary>
    public async ValueTask PrepareAsync(IEnumerable<string> names, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(names);
        if (IsStale())
        {
            await RefreshAsync().WaitAsync(cancellationToken);
        }

        List<string>? unknown = null;
        foreach (var name in names)
        {
            if (!_nodes.ContainsKey(name))
            {
                (unknown ??= []).Add(name);
            }
        }

        if (unknown is null)
        {
            return;
        }

        var found = await _read(unknown, cancellationToken);
        foreach (var name in unknown)
        {
            if (found.TryGetValue(name, out var record))
            {
                Observe(name, NodeLiveness.Of(record));
            }
            else
            {
                // Remembered as absent until the next refresh, so a holder without a record costs one read per interval.
                _nodes.TryAdd(name, null);
            }
        }
    }

    /// <summary>The node as last read or written by this instance; false when it has no record (or was never prepared).</summary>
    public bool TryGet(string name, out NodeLiveness node)
    {
        if (_nodes.TryGetValue(name, out var value) && value is { } known)
        {
            node = known;
            return true;
        }

        node = default;
        return false;
    }

    /// <summary>Merges what this instance just read or wrote for a node's record.</summary>
    public void Observe(string name, NodeLiveness node) =>
        _nodes.AddOrUpdate(name, static (_, n) => n, static (_, old, n) => old is { } o ? o.Merge(n) : n, node);

    private bool IsStale()
    {
        var age = NowMs() - Volatile.Read(ref _refreshedAt);
        return age < 0 || age >= _refreshMs;
    }

    private Task RefreshAsync()
    {
        lock (_gate)
        {
            if (!IsStale())
            {
                return Task.CompletedTask;
            }

            if (_refreshing is not { IsCompleted: false })
            {
                // Not bound to one caller's cancellation: every lookup waiting on it shares the result.
                _refreshing = Task.Run(RefreshAllAsync);
            }

            return _refreshing;
        }
    }

    private async Task RefreshAllAsync()
    {
        var started = NowMs();
        var names = new List<string>(_nodes.Count);
        foreach (var (name, value) in _nodes)
        {
            if (value is null)
            {
                // Had no record: forgotten rather than re-read, so names that stop being asked about do not pile up;
                // a lookup that still names it reads it again (once per interval).
                _nodes.TryRemove(new KeyValuePair<string, NodeLiveness?>(name, null));
            }
            else
            {
                names.Add(name);
            }
        }

        var found = names.Count == 0 ? null : await _read(names, CancellationToken.None);
        var now = NowMs();
        foreach (var name in names)
        {
            if (found is not null && found.TryGetValue(name, out var record))
            {
                Observe(name, NodeLiveness.Of(record));
            }
            else if (!TryGet(name, out var known) || now - known.LastSeen > _timeoutMs)
            {
                // Gone from the store (expired after NodeRetention) or never there. A live entry is kept: its record
                // was written by this instance after the read began, and it ages out by lastSeen like any other.
                _nodes.TryRemove(name, out _);
            }
        }

        Interlocked.Increment(ref _refreshes);
        Volatile.Write(ref _refreshedAt, started);
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();
}
