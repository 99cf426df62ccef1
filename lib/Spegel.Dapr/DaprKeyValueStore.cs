using System.Globalization;
using System.Text;
using Dapr.Client;
using Spegel.Core.State;

namespace Spegel.Dapr;

/// <summary>
/// <see cref="IKeyValueStore"/> over the Dapr state API (through the sidecar, so the backend is whatever the
/// component YAML names). Conditional writes use first-write concurrency: with an ETag it is a compare-and-swap,
/// without one (an empty ETag on the wire) the write only creates the key.
/// </summary>
public sealed class DaprKeyValueStore : IKeyValueStore
{
    /// <summary>The metadata key of Dapr's per-item time to live.</summary>
    public const string TtlMetadataKey = "ttlInSeconds";

    private static readonly StateOptions FirstWrite = new() { Concurrency = ConcurrencyMode.FirstWrite };
    private static readonly StateOptions LastWrite = new() { Concurrency = ConcurrencyMode.LastWrite };

    private readonly DaprClient _client;

    public DaprKeyValueStore(DaprClient client, string storeName)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(storeName);
        _client = client;
        StoreName = storeName;
    }

    /// <summary>The state store component's <c>metadata.name</c>.</summary>
    public string StoreName { get; }

    public async ValueTask<KeyValueEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var (value, etag) = await _client.GetByteStateAndETagAsync(StoreName, key, cancellationToken: cancellationToken);
        // A missing key comes back with no ETag; every stored value has one.
        return string.IsNullOrEmpty(etag) ? null : new KeyValueEntry(value.ToArray(), etag);
    }

    public async ValueTask<IReadOnlyDictionary<string, KeyValueEntry>> GetManyAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var found = new Dictionary<string, KeyValueEntry>(keys.Count, StringComparer.Ordinal);
        if (keys.Count == 0)
        {
            return found;
        }

        // The SDK's untyped bulk read decodes values as UTF-8 text; the resolver stores JSON, so nothing is lost.
        var items = await _client.GetBulkStateAsync(StoreName, keys as IReadOnlyList<string> ?? [.. keys], parallelism: null, cancellationToken: cancellationToken);
        foreach (var item in items)
        {
            if (!string.IsNullOrEmpty(item.ETag))
            {
                found[item.Key] = new KeyValueEntry(Encoding.UTF8.GetBytes(item.Value ?? string.Empty), item.ETag);
            }
        }

        return found;
    }

    public async ValueTask<bool> TrySaveAsync(string key, ReadOnlyMemory<byte> value, SaveCondition condition, TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
    {
        var metadata = timeToLive is { } ttl ? TtlMetadata(ttl) : null;
        switch (condition.Kind)
        {
            case SaveConditionKind.IfMatch:
                return await _client.TrySaveByteStateAsync(StoreName, key, value, condition.ETag!, FirstWrite, metadata, cancellationToken);
            case SaveConditionKind.IfNotExists:
                // An empty ETag reaches the store as "no ETag" (state.SetRequest.HasETag is false), and first-write
                // without an ETag only inserts; a conflict comes back as gRPC Aborted, which the SDK maps to false.
                return await _client.TrySaveByteStateAsync(StoreName, key, value, string.Empty, FirstWrite, metadata, cancellationToken);
            default:
                await _client.SaveByteStateAsync(StoreName, key, value, LastWrite, metadata, cancellationToken);
                return true;
        }
    }

    public async ValueTask<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default)
    {
        if (etag is null)
        {
            await _client.DeleteStateAsync(StoreName, key, LastWrite, cancellationToken: cancellationToken);
            return true;
        }

        return await _client.TryDeleteStateAsync(StoreName, key, etag, FirstWrite, cancellationToken: cancellationToken);
    }

    private static Dictionary<string, string> TtlMetadata(TimeSpan ttl)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero, nameof(ttl));
        var seconds = (long)Math.Ceiling(ttl.TotalSeconds);
        return new Dictionary<string, string>(StringComparer.Ordinal) { [TtlMetadataKey] = seconds.ToString(CultureInfo.InvariantCulture) };
    }
}
