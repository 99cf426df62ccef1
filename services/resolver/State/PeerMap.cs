using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using Spegel.Core.Events;
using Spegel.Core.State;

namespace Spegel.Resolver.State;

/// <summary>Who sent an event and where it sits in that node's order.</summary>
public sealed record NodeFacts(string Name, string Address, EventStamp Stamp);

/// <summary>A tag key (<c>registry/repo:tag</c>, normalised) and the digest a node resolved it to.</summary>
public sealed record TagBindingKey(string TagKey, string Digest);

/// <summary>
/// What touching a node's record found. <paramref name="ReplacedAddress"/>: the address a newer event replaced
/// (null when unchanged or new), and whether the node was alive with it (<paramref name="ReplacedWhileLive"/>).
/// </summary>
/// <summary>
/// What touching a node's record found. <see cref="Node"/> carries the stamp the map uses for the event (its epoch
/// mapped to the run's place in the node's history): everything the event then writes must use it.
/// </summary>
public sealed record TouchResult(UpdateOutcome Outcome, bool Superseded, NodeFacts Node, string? ReplacedAddress = null, bool ReplacedWhileLive = false);

/// <summary>What recording a snapshot part found.</summary>
public sealed record SnapshotPartResult(UpdateOutcome Outcome, bool Completed, EventStamp Floor);

/// <summary>
/// The cluster-wide map in the state store: digest → holders, tag → bindings, node → liveness and ordering.
/// Every change is a per-key compare-and-swap that is a no-op when the node's entry already has the event's stamp
/// or a newer one, so duplicates and reordering leave the map as it was. See docs/resolver.md.
/// </summary>
public sealed class PeerMap
{
    private const int BulkReadSize = 100;
    private const int CleanupParallelism = 16;

    private readonly IKeyValueStore _store;
    private readonly TimeProvider _time;
    private readonly ResolverOptions _options;

    public PeerMap(IKeyValueStore store, IOptions<ResolverOptions> options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _time = time;
        _options = options.Value;
        var policy = new UpdatePolicy(_options.UpdateTimeout, _options.UpdateAttempts);
        var tombstoneRetention = _options.TombstoneRetention;
        Digests = new(store, ResolverStateJsonContext.Default.DigestRecord, time, policy,
            compact: (r, now) => RemoveOldTombstones(r.Nodes, e => !e.Held && Older(e.At, now, tombstoneRetention)));
        Tags = new(store, ResolverStateJsonContext.Default.TagRecord, time, policy,
            compact: (r, now) => RemoveOldTombstones(r.Nodes, e => !e.Held && Older(e.At, now, tombstoneRetention)));
        Nodes = new(store, ResolverStateJsonContext.Default.NodeRecord, time, policy, _options.NodeRetention);
        Index = new(store, ResolverStateJsonContext.Default.NodeIndexChunk, time, policy);
        Liveness = new NodeLivenessView(ReadNodesAsync, time, _options.EffectiveLivenessRefresh, _options.NodeTimeout);
    }

    public RecordUpdater<DigestRecord> Digests { get; }

    public RecordUpdater<TagRecord> Tags { get; }

    public RecordUpdater<NodeRecord> Nodes { get; }

    public RecordUpdater<NodeIndexChunk> Index { get; }

    /// <summary>The node records lookups use, kept in memory: this instance's writes at once, other replicas' within <see cref="ResolverOptions.LivenessRefresh"/>.</summary>
    public NodeLivenessView Liveness { get; }

    /// <summary>
    /// Records that the node is alive (by this resolver's clock) when the event is newer than any applied before,
    /// and tells whether a completed snapshot already superseded the event.
    /// </summary>
    public async Task<TouchResult> TouchAsync(NodeFacts node, TimeSpan? heartbeatInterval = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        var now = NowMs();
        var floor = default(EventStamp);
        string? replaced = null;
        var wasLive = false;
        NodeLiveness? seen = null;
        var stamp = node.Stamp;
        var olderRun = false;
        var outcome = await Nodes.UpdateAsync(ResolverKeys.Node(node.Name), record =>
        {
            floor = record.Floor;
            replaced = null;
            olderRun = false;
            if (MapRun(record, node.Stamp.Epoch, now) is not { } epoch)
            {
                // A run that started before the newest one was seen: a late event of an older run, ignored.
                olderRun = true;
                seen = NodeLiveness.Of(record);
                return false;
            }

            stamp = new EventStamp(epoch, node.Stamp.Sequence);
            if (record.LastSeen != 0 && stamp <= record.LastStamp)
            {
                // An older or equal stamp never moves the node's address (nor anything else in its record).
                seen = NodeLiveness.Of(record);
                return false;
            }

            if (record.LastSeen != 0 && record.Address.Length > 0 && !string.Equals(record.Address, node.Address, StringComparison.Ordinal))
            {
                replaced = record.Address;
                wasLive = now - record.LastSeen < (long)_options.NodeTimeout.TotalMilliseconds;
            }

            record.LastStamp = stamp;
            record.LastSeen = now;
            record.Address = node.Address;
            if (heartbeatInterval is { } interval)
            {
                record.HeartbeatIntervalMs = (long)interval.TotalMilliseconds;
            }

            seen = NodeLiveness.Of(record);
            return true;
        });
        Observe(node.Name, outcome, seen);
        return new TouchResult(outcome, olderRun || stamp < floor, node with { Stamp = stamp }, outcome == UpdateOutcome.Committed ? replaced : null, wasLive);
    }

    /// <summary>How many of a node's runs are remembered (a few hundred bytes in its record).</summary>
    public const int RememberedRuns = 32;

    /// <summary>
    /// The epoch the map uses for the run that stamps <paramref name="raw"/>, adding the run when it is new: its own
    /// epoch when that is above the newest run's (a later start time, the usual case); just above the newest when it
    /// is not but the run started after the newest was first seen here (the node's clock was stepped back between two
    /// starts); null when it started before that, which makes it a late event of an older run, ignored as before.
    /// An added run is always newer than the record's stamp, so the caller writes it.
    /// </summary>
    private static long? MapRun(NodeRecord record, long raw, long now)
    {
        if (record.LastSeen == 0)
        {
            record.Runs = [new NodeRun { Raw = raw, Epoch = raw, FirstSeen = now }];
            return raw;
        }

        if (record.Runs.Count == 0)
        {
            // Written before runs were kept: only the current run is known, first seen no earlier than its last event.
            record.Runs.Add(new NodeRun { Raw = record.Epoch, Epoch = record.Epoch, FirstSeen = record.LastSeen });
        }

        foreach (var run in record.Runs)
        {
            if (run.Raw == raw)
            {
                return run.Epoch;
            }
        }

        var newest = record.Runs.MaxBy(r => r.Epoch)!;
        long epoch;
        if (raw > newest.Epoch)
        {
            epoch = raw;
        }
        else if (raw >= newest.FirstSeen)
        {
            epoch = newest.Epoch + 1;
        }
        else
        {
            return null;
        }

        record.Runs.Add(new NodeRun { Raw = raw, Epoch = epoch, FirstSeen = now });
        if (record.Runs.Count > RememberedRuns)
        {
            record.Runs.RemoveRange(0, record.Runs.Count - RememberedRuns);
        }

        return epoch;
    }

    /// <summary>The node holds these digests and resolved these tags so, as of its event's stamp.</summary>
    public async Task<UpdateOutcome> AdvertiseAsync(NodeFacts node, IReadOnlyCollection<string> digests, IReadOnlyCollection<TagBindingKey> tags)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(digests);
        ArgumentNullException.ThrowIfNull(tags);
        var now = NowMs();
        var work = new List<(KeyWork Key, Task<UpdateOutcome> Update)>(digests.Count + tags.Count);
        UpdateHolders(node, digests, held: true, now, work);

        foreach (var binding in tags.DistinctBy(t => t.TagKey, StringComparer.Ordinal))
        {
            var key = new KeyWork(ResolverKeys.Tag(binding.TagKey));
            work.Add((key, Tags.UpdateAsync(key.Key, record =>
            {
                record.Nodes.TryGetValue(node.Name, out var entry);
                if (key.Skip(entry?.Stamp, node.Stamp))
                {
                    return false;
                }

                // "Since" survives re-advertisements of the same binding, so a restart does not make an old digest look new.
                var since = entry is { Held: true } && entry.Digest == binding.Digest ? entry.Since : now;
                record.Nodes[node.Name] = new BindingEntry { Digest = binding.Digest, Stamp = node.Stamp, Held = true, Since = since, At = now };
                return true;
            })));
        }

        return await FinishAsync(node.Name, work);
    }

    /// <summary>Queues one holder entry per digest (held, or a tombstone), skipped where the stored stamp is newer.</summary>
    private void UpdateHolders(NodeFacts node, IReadOnlyCollection<string> digests, bool held, long now, List<(KeyWork Key, Task<UpdateOutcome> Update)> work)
    {
        foreach (var digest in digests.Distinct(StringComparer.Ordinal))
        {
            var key = new KeyWork(ResolverKeys.Digest(digest));
            work.Add((key, Digests.UpdateAsync(key.Key, record =>
            {
                record.Nodes.TryGetValue(node.Name, out var entry);
                if (key.Skip(entry?.Stamp, node.Stamp))
                {
                    return false;
                }

                record.Nodes[node.Name] = new HolderEntry { Stamp = node.Stamp, Held = held, At = now };
                return true;
            })));
        }
    }

    /// <summary>The node no longer holds these digests or tags: tombstones, so an older advertisement cannot resurrect them.</summary>
    public async Task<UpdateOutcome> WithdrawAsync(NodeFacts node, IReadOnlyCollection<string> digests, IReadOnlyCollection<string> tagKeys)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(digests);
        ArgumentNullException.ThrowIfNull(tagKeys);
        var now = NowMs();
        var work = new List<(KeyWork Key, Task<UpdateOutcome> Update)>(digests.Count + tagKeys.Count);
        UpdateHolders(node, digests, held: false, now, work);

        foreach (var tagKey in tagKeys.Distinct(StringComparer.Ordinal))
        {
            var key = new KeyWork(ResolverKeys.Tag(tagKey));
            work.Add((key, Tags.UpdateAsync(key.Key, record =>
            {
                record.Nodes.TryGetValue(node.Name, out var entry);
                if (key.Skip(entry?.Stamp, node.Stamp))
                {
                    return false;
                }

                record.Nodes[node.Name] = new BindingEntry
                {
                    Digest = entry?.Digest ?? string.Empty, Stamp = node.Stamp, Held = false, Since = entry?.Since ?? now, At = now,
                };
                return true;
            })));
        }

        return await FinishAsync(node.Name, work);
    }

    /// <summary>
    /// Counts a snapshot part. When the last part arrives the snapshot's stamp becomes the node's floor: from then on
    /// entries and events of the node with a lower stamp are superseded.
    /// </summary>
    public async Task<SnapshotPartResult> RecordSnapshotPartAsync(NodeFacts node, long snapshotId, int part, int partCount)
    {
        ArgumentNullException.ThrowIfNull(node);
        var id = new EventStamp(node.Stamp.Epoch, snapshotId);
        var completed = false;
        NodeLiveness? seen = null;
        var outcome = await Nodes.UpdateAsync(ResolverKeys.Node(node.Name), record =>
        {
            completed = false;
            seen = NodeLiveness.Of(record);
            if (id <= record.Floor || (record.Snapshot is { } newer && newer.Stamp > id))
            {
                return false;
            }

            if (record.Snapshot is not { } progress || progress.Stamp < id)
            {
                progress = new SnapshotProgress { Epoch = id.Epoch, Id = id.Sequence, PartCount = partCount };
                record.Snapshot = progress;
            }

            if (!progress.Parts.Add(part))
            {
                return false;
            }

            if (progress.Parts.Count >= progress.PartCount)
            {
                record.Floor = id;
                record.Snapshot = null;
                completed = true;
                seen = NodeLiveness.Of(record);
            }

            return true;
        });
        Observe(node.Name, outcome, seen);
        return new SnapshotPartResult(outcome, completed && outcome == UpdateOutcome.Committed, id);
    }

    /// <summary>
    /// Removes the node's entries (held or tombstone) with a stamp below <paramref name="floor"/>, found through the
    /// node's index rather than by scanning, and drops the keys it no longer appears in from the index.
    /// Returns how many held entries were withdrawn. Answers hide such entries already; this frees the space.
    /// </summary>
    public async Task<int> RemoveSupersededAsync(string node, EventStamp floor, CancellationToken cancellationToken = default)
    {
        var chunkKeys = Enumerable.Range(0, _options.IndexChunks).Select(i => ResolverKeys.IndexChunk(node, i)).ToList();
        var chunks = await _store.GetManyAsync(chunkKeys, cancellationToken);
        var keys = chunks.Values.SelectMany(c => Index.Deserialize(c).Keys).Distinct(StringComparer.Ordinal).ToList();
        var gone = new ConcurrentBag<string>();
        var withdrawn = 0;
        foreach (var batch in keys.Chunk(BulkReadSize))
        {
            var records = await _store.GetManyAsync(batch, cancellationToken);
            var stale = new List<string>();
            foreach (var key in batch)
            {
                var stamp = records.TryGetValue(key, out var entry) ? StampOf(key, node, entry) : null;
                if (stamp is null)
                {
                    gone.Add(key);
                }
                else if (stamp < floor)
                {
                    stale.Add(key);
                }
            }

            await Parallel.ForEachAsync(stale, new ParallelOptions { MaxDegreeOfParallelism = CleanupParallelism, CancellationToken = cancellationToken }, async (key, _) =>
            {
                var removed = false;
                var wasHeld = false;
                bool Remove<TEntry>(Dictionary<string, TEntry> nodes, Func<TEntry, EventStamp> stampOf, Func<TEntry, bool> held)
                {
                    removed = !nodes.TryGetValue(node, out var e) || stampOf(e) < floor;
                    wasHeld = e is not null && held(e) && removed;
                    return removed && nodes.Remove(node);
                }

                var outcome = key.StartsWith(ResolverKeys.DigestPrefix, StringComparison.Ordinal)
                    ? await Digests.UpdateAsync(key, r => Remove(r.Nodes, e => e.Stamp, e => e.Held))
                    : await Tags.UpdateAsync(key, r => Remove(r.Nodes, e => e.Stamp, e => e.Held));
                if (outcome != UpdateOutcome.Contended && removed)
                {
                    gone.Add(key);
                    if (wasHeld)
                    {
                        Interlocked.Increment(ref withdrawn);
                    }
                }
            });
        }

        await UpdateIndexAsync(node, gone, add: false);
        return withdrawn;
    }

    public ValueTask<DigestRecord?> ReadDigestAsync(string digest, CancellationToken cancellationToken = default) =>
        Digests.ReadAsync(ResolverKeys.Digest(digest), cancellationToken);

    public ValueTask<TagRecord?> ReadTagAsync(string tagKey, CancellationToken cancellationToken = default) =>
        Tags.ReadAsync(ResolverKeys.Tag(tagKey), cancellationToken);

    public ValueTask<NodeRecord?> ReadNodeAsync(string node, CancellationToken cancellationToken = default) =>
        Nodes.ReadAsync(ResolverKeys.Node(node), cancellationToken);

    /// <summary>The records of the named nodes that exist, by node name.</summary>
    public async Task<IReadOnlyDictionary<string, NodeRecord>> ReadNodesAsync(IReadOnlyCollection<string> nodes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var result = new Dictionary<string, NodeRecord>(nodes.Count, StringComparer.Ordinal);
        foreach (var batch in nodes.Chunk(BulkReadSize))
        {
            var entries = await _store.GetManyAsync(batch.Select(ResolverKeys.Node).ToList(), cancellationToken);
            foreach (var name in batch)
            {
                if (entries.TryGetValue(ResolverKeys.Node(name), out var entry))
                {
                    result[name] = Nodes.Deserialize(entry);
                }
            }
        }

        return result;
    }

    /// <summary>The keys in the node's index (all chunks).</summary>
    public async Task<IReadOnlySet<string>> ReadIndexAsync(string node, CancellationToken cancellationToken = default)
    {
        var chunkKeys = Enumerable.Range(0, _options.IndexChunks).Select(i => ResolverKeys.IndexChunk(node, i)).ToList();
        var chunks = await _store.GetManyAsync(chunkKeys, cancellationToken);
        return chunks.Values.SelectMany(c => Index.Deserialize(c).Keys).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// Hands what a node-record update last read or wrote to the liveness view, unless the update gave up (then the
    /// record it saw may already be outdated; the next refresh reads the store).
    /// </summary>
    private void Observe(string node, UpdateOutcome outcome, NodeLiveness? seen)
    {
        if (outcome != UpdateOutcome.Contended && seen is { } value)
        {
            Liveness.Observe(node, value);
        }
    }

    private async Task<UpdateOutcome> FinishAsync(string node, List<(KeyWork Key, Task<UpdateOutcome> Update)> work)
    {
        var outcomes = await Task.WhenAll(work.Select(w => w.Update));
        // The index is written after the records: an entry missing from it is still hidden by the node's floor after
        // its next snapshot, it only lingers in storage; redelivery after a failure re-adds it (same stamp).
        var indexOutcome = await UpdateIndexAsync(node, work.Where(w => w.Key.NeedsIndex).Select(w => w.Key.Key), add: true);
        return Combine(outcomes.Append(indexOutcome));
    }

    private Task<UpdateOutcome> UpdateIndexAsync(string node, IEnumerable<string> keys, bool add)
    {
        var mutations = keys.GroupBy(k => ResolverKeys.ChunkOf(k, _options.IndexChunks)).ToDictionary(
            group => ResolverKeys.IndexChunk(node, group.Key),
            group =>
            {
                var members = group.ToList();
                return (Func<NodeIndexChunk, bool>)(chunk =>
                {
                    var changed = false;
                    foreach (var key in members)
                    {
                        changed |= add ? chunk.Keys.Add(key) : chunk.Keys.Remove(key);
                    }

                    return changed;
                });
            },
            StringComparer.Ordinal);
        return Index.UpdateManyAsync(mutations);
    }

    private static EventStamp? StampOf(string key, string node, KeyValueEntry entry)
    {
        if (entry.Value.IsEmpty)
        {
            return null;
        }

        if (key.StartsWith(ResolverKeys.DigestPrefix, StringComparison.Ordinal))
        {
            var record = System.Text.Json.JsonSerializer.Deserialize(entry.Value.Span, ResolverStateJsonContext.Default.DigestRecord);
            return record is not null && record.Nodes.TryGetValue(node, out var e) ? e.Stamp : null;
        }

        var tags = System.Text.Json.JsonSerializer.Deserialize(entry.Value.Span, ResolverStateJsonContext.Default.TagRecord);
        return tags is not null && tags.Nodes.TryGetValue(node, out var b) ? b.Stamp : null;
    }

    private static UpdateOutcome Combine(IEnumerable<UpdateOutcome> outcomes)
    {
        var result = UpdateOutcome.Unchanged;
        foreach (var outcome in outcomes)
        {
            if (outcome == UpdateOutcome.Contended)
            {
                return UpdateOutcome.Contended;
            }

            if (outcome == UpdateOutcome.Committed)
            {
                result = UpdateOutcome.Committed;
            }
        }

        return result;
    }

    private static void RemoveOldTombstones<TEntry>(Dictionary<string, TEntry> nodes, Func<TEntry, bool> expired)
    {
        foreach (var (name, entry) in nodes)
        {
            if (expired(entry))
            {
                nodes.Remove(name);
            }
        }
    }

    private static bool Older(long atMs, DateTimeOffset now, TimeSpan age) => atMs < (now - age).ToUnixTimeMilliseconds();

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>One key an event touches, and whether the node's index must list it afterwards.</summary>
    [DebuggerDisplay("{Key}")]
    private sealed class KeyWork(string key)
    {
        public string Key { get; } = key;

        public bool NeedsIndex { get; private set; }

        /// <summary>
        /// True when the existing entry is as new as the event or newer (nothing to do). A new entry needs indexing,
        /// and so does one with exactly the event's stamp: it may be a redelivery after the index write failed.
        /// </summary>
        public bool Skip(EventStamp? existing, EventStamp incoming)
        {
            NeedsIndex = existing is null || existing == incoming;
            return existing is { } e && e >= incoming;
        }
    }
}
