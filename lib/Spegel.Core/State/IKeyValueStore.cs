namespace Spegel.Core.State;

/// <summary>
/// A key-value store with optimistic concurrency: every value carries an opaque ETag that changes on every write,
/// and writes can be made conditional on it. This is the subset of the Dapr state API the resolver needs; Dapr's
/// state store and an in-memory twin implement it, and one conformance test class runs against both.
/// </summary>
/// <remarks>
/// Keys must not contain <c>||</c> (Dapr's key-prefix separator). An ETag for a key that does not exist is
/// store-specific (PostgreSQL rejects it, Redis accepts it): to create a key only if it is absent, use
/// <see cref="SaveCondition.IfNotExists"/>, never a stale ETag.
/// </remarks>
public interface IKeyValueStore
{
    /// <summary>The value and its ETag, or null when the key does not exist (or has expired).</summary>
    ValueTask<KeyValueEntry?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>The entries of the keys that exist, by key; missing keys are absent from the result.</summary>
    ValueTask<IReadOnlyDictionary<string, KeyValueEntry>> GetManyAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes <paramref name="value"/> when <paramref name="condition"/> holds; false when it does not (ETag mismatch,
    /// or the key exists for <see cref="SaveCondition.IfNotExists"/>). With <paramref name="timeToLive"/> the key
    /// expires that long after this write (whole seconds, rounded up; stores without TTL support fail the call).
    /// </summary>
    ValueTask<bool> TrySaveAsync(
        string key,
        ReadOnlyMemory<byte> value,
        SaveCondition condition,
        TimeSpan? timeToLive = null,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes the key when its ETag is <paramref name="etag"/> (false on a mismatch), or unconditionally when
    /// <paramref name="etag"/> is null. Deleting a missing key unconditionally succeeds.
    /// </summary>
    ValueTask<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default);
}

/// <summary>A stored value and the ETag of the write that produced it.</summary>
public sealed record KeyValueEntry(ReadOnlyMemory<byte> Value, string ETag);

/// <summary>When a save may happen: always, only over a known version, or only when the key is absent.</summary>
public readonly record struct SaveCondition
{
    private SaveCondition(SaveConditionKind kind, string? etag)
    {
        Kind = kind;
        ETag = etag;
    }

    public SaveConditionKind Kind { get; }

    /// <summary>The ETag to match, for <see cref="SaveConditionKind.IfMatch"/>.</summary>
    public string? ETag { get; }

    /// <summary>Last write wins.</summary>
    public static SaveCondition None => default;

    /// <summary>Only while the key is absent (first write).</summary>
    public static SaveCondition IfNotExists => new(SaveConditionKind.IfNotExists, null);

    /// <summary>Only while the stored value still has <paramref name="etag"/> (compare-and-swap).</summary>
    public static SaveCondition IfMatch(string etag)
    {
        ArgumentException.ThrowIfNullOrEmpty(etag);
        return new(SaveConditionKind.IfMatch, etag);
    }

    /// <summary>IfMatch for an entry that was read, IfNotExists when the read found nothing.</summary>
    public static SaveCondition After(KeyValueEntry? read) => read is null ? IfNotExists : IfMatch(read.ETag);
}

public enum SaveConditionKind
{
    None,
    IfNotExists,
    IfMatch,
}
