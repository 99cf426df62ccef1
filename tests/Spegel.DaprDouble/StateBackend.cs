using System.Globalization;

namespace Spegel.DaprDouble;

/// <summary>One change to a key, as the state store component receives it (key already prefixed).</summary>
internal sealed record StateMutation(
    StateMutationKind Kind,
    string Key,
    byte[]? Value = null,
    string? ETag = null,
    bool FirstWrite = false,
    TimeSpan? Ttl = null);

internal enum StateMutationKind
{
    Upsert,
    Delete,
}

/// <summary>A stored value with its ETag and expiry.</summary>
internal sealed record StateEntry(byte[] Value, string ETag, DateTimeOffset? ExpiresAt);

/// <summary>The ETag check of a mutation failed: the key changed (or vanished) since it was read.</summary>
internal sealed class ETagMismatchException(string key)
    : Exception($"possible etag mismatch. error from state store: failed to set key {key}")
{
    public string Key { get; } = key;
}

/// <summary>
/// The backing database of a state store component (what Redis or PostgreSQL is to a real sidecar),
/// shared by every sidecar whose component points at it.
/// All checks and writes of one call happen under one lock, so a multi-key call is all-or-nothing.
/// </summary>
internal sealed class StateBackend(TimeProvider timeProvider)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, StateEntry> _entries = new(StringComparer.Ordinal);

    public StateEntry? Get(string key)
    {
        lock (_gate)
        {
            return Live(key, timeProvider.GetUtcNow());
        }
    }

    /// <summary>Checks every ETag first, then applies every mutation; on a mismatch nothing is written.</summary>
    public void Apply(IReadOnlyList<StateMutation> mutations)
    {
        lock (_gate)
        {
            var now = timeProvider.GetUtcNow();
            // Keys the earlier mutations of this same call will have written, so a later one in the
            // transaction is checked against them as a real store would within MULTI or BEGIN.
            var pending = new Dictionary<string, StateEntry?>(StringComparer.Ordinal);
            foreach (var mutation in mutations)
            {
                var current = pending.TryGetValue(mutation.Key, out var written) ? written : Live(mutation.Key, now);
                Check(mutation, current);
                pending[mutation.Key] = mutation.Kind == StateMutationKind.Upsert
                    ? new StateEntry(mutation.Value ?? [], NewETag(), mutation.Ttl is { } ttl ? now + ttl : null)
                    : null;
            }

            foreach (var (key, entry) in pending)
            {
                if (entry is null)
                {
                    _entries.Remove(key);
                }
                else
                {
                    _entries[key] = entry;
                }
            }
        }
    }

    public IReadOnlyDictionary<string, StateEntry> Snapshot()
    {
        lock (_gate)
        {
            var now = timeProvider.GetUtcNow();
            return _entries.Where(e => e.Value.ExpiresAt is not { } at || at > now)
                .ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
        }
    }

    private static void Check(StateMutation mutation, StateEntry? current)
    {
        if (!string.IsNullOrEmpty(mutation.ETag))
        {
            // An ETag must name the live version; one for a missing key cannot match (as PostgreSQL and
            // CosmosDB behave; Redis alone would accept it), so code written against the double stays safe on all.
            if (current is null || !string.Equals(current.ETag, mutation.ETag, StringComparison.Ordinal))
            {
                throw new ETagMismatchException(mutation.Key);
            }

            return;
        }

        // first-write without an ETag only creates (the state store conformance test "first-write without etag").
        if (mutation.FirstWrite && mutation.Kind == StateMutationKind.Upsert && current is not null)
        {
            throw new ETagMismatchException(mutation.Key);
        }
    }

    private StateEntry? Live(string key, DateTimeOffset now)
    {
        if (!_entries.TryGetValue(key, out var entry))
        {
            return null;
        }

        if (entry.ExpiresAt is { } at && at <= now)
        {
            _entries.Remove(key);
            return null;
        }

        return entry;
    }

    // Opaque on purpose: callers must not parse or compare ETags, only hand them back.
    private static string NewETag() => Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture);
}
