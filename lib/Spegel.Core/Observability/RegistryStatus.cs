using System.Text.Json;
using System.Text.Json.Serialization;

namespace Spegel.Core.Observability;

/// <summary>
/// What a registry answers on <c>GET /v1/status</c>: what it served its own node's containerd since it started,
/// and its most recent requests. The resolver's cluster page reads it from every live node.
/// </summary>
public sealed record RegistryStatus(
    string Node,
    DateTimeOffset Started,
    RegistryTotals Totals,
    IReadOnlyList<RecentRequest> Recent);

/// <summary>
/// Counters since start. Requests and bytes are those of containerd on this node (manifests and blobs, GET and
/// HEAD), by source: <c>local</c> (this node's content), <c>peer</c> (streamed from another node), <c>miss</c>
/// (404: containerd went upstream). <see cref="BytesToPeers"/> is what this node served to other nodes' registries.
/// </summary>
public sealed record RegistryTotals(long Local, long Peer, long Miss, long BytesLocal, long BytesFromPeers, long BytesToPeers)
{
    /// <summary>Requests containerd did not have to send upstream.</summary>
    [JsonIgnore]
    public long Hits => Local + Peer;

    /// <summary>Bytes containerd got from the mirror instead of the upstream registry.</summary>
    [JsonIgnore]
    public long BytesKeptOffUpstream => BytesLocal + BytesFromPeers;

    public static RegistryTotals Zero { get; } = new(0, 0, 0, 0, 0, 0);

    public static RegistryTotals operator +(RegistryTotals left, RegistryTotals right)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        return new(left.Local + right.Local, left.Peer + right.Peer, left.Miss + right.Miss,
            left.BytesLocal + right.BytesLocal, left.BytesFromPeers + right.BytesFromPeers, left.BytesToPeers + right.BytesToPeers);
    }

    public static RegistryTotals Add(RegistryTotals left, RegistryTotals right) => left + right;
}

/// <summary>
/// One request containerd made to this node's registry: <see cref="Source"/> is <c>local</c>, the name of the peer
/// that served it, <c>miss</c>, or <c>filtered</c>; <see cref="Bytes"/> is the response's length (0 for HEAD).
/// </summary>
public sealed record RecentRequest(
    DateTimeOffset Time,
    string Method,
    string Handler,
    string Key,
    string Registry,
    string Source,
    int Status,
    double LatencyMs,
    long Bytes)
{
    /// <summary>The node whose registry answered containerd; set by whoever merges several nodes' lists.</summary>
    public string? Node { get; init; }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RegistryStatus))]
public sealed partial class RegistryStatusJsonContext : JsonSerializerContext;
