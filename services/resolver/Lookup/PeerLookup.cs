using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Spegel.Core.Events;
using Spegel.Core.Routing;
using Spegel.Resolver.State;

namespace Spegel.Resolver.Lookup;

public sealed record ErrorResponse(string Error);

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ErrorResponse))]
public sealed partial class ResolverJsonContext : JsonSerializerContext;

/// <summary>
/// Answers "who can serve this key": live holders only (heard from within the node timeout, by this resolver's
/// clock), entries below a node's snapshot floor left out, the freshest first with equals shuffled to spread load.
/// A tag answers only the nodes whose binding is the newest digest known for it.
/// </summary>
public sealed class PeerLookup(PeerMap map, IOptions<ResolverOptions> options, TimeProvider time)
{
    private readonly ResolverOptions _options = options.Value;

    public async Task<PeersResponse> LookupAsync(LookupKey key, string? exclude, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.IsTag ? await LookupTagAsync(key.Value, exclude, cancellationToken) : await LookupDigestAsync(key.Value, exclude, cancellationToken);
    }

    private async Task<PeersResponse> LookupDigestAsync(string digest, string? exclude, CancellationToken cancellationToken)
    {
        var record = await map.ReadDigestAsync(digest, cancellationToken);
        var held = record?.Nodes.Where(n => n.Value.Held).Select(n => (Node: n.Key, n.Value.Stamp, n.Value.At)).ToList() ?? [];
        if (held.Count == 0)
        {
            return new PeersResponse(digest, null, []);
        }

        var nodes = await map.ReadNodesAsync(held.Select(h => h.Node).ToList(), cancellationToken);
        return new PeersResponse(digest, null, Order(held.Where(h => IsAnswerable(h.Node, h.Stamp, nodes, exclude)), nodes));
    }

    private async Task<PeersResponse> LookupTagAsync(string tagKey, string? exclude, CancellationToken cancellationToken)
    {
        var record = await map.ReadTagAsync(tagKey, cancellationToken);
        var bindings = record?.Nodes.Where(n => n.Value.Held).ToList() ?? [];
        if (bindings.Count == 0)
        {
            return new PeersResponse(tagKey, null, []);
        }

        var nodes = await map.ReadNodesAsync(bindings.Select(b => b.Key).ToList(), cancellationToken);

        // Newest = the binding this resolver first saw latest, among bindings not superseded by their node's snapshot,
        // live node or not: a digest that only a dead node knew is still the newest, and then nobody is answered
        // (the pull goes upstream) rather than an older digest.
        var current = bindings.Where(b => !IsSuperseded(b.Key, b.Value.Stamp, nodes)).ToList();
        if (current.Count == 0)
        {
            return new PeersResponse(tagKey, null, []);
        }

        var newest = current.OrderByDescending(b => b.Value.Since).ThenByDescending(b => b.Value.At)
            .ThenBy(b => b.Value.Digest, StringComparer.Ordinal).First().Value.Digest;
        var holders = current.Where(b => b.Value.Digest == newest).Select(b => (Node: b.Key, b.Value.Stamp, b.Value.At));
        return new PeersResponse(tagKey, newest, Order(holders.Where(h => IsAnswerable(h.Node, h.Stamp, nodes, exclude)), nodes));
    }

    private bool IsAnswerable(string node, EventStamp stamp, IReadOnlyDictionary<string, NodeRecord> nodes, string? exclude) =>
        !string.Equals(node, exclude, StringComparison.Ordinal)
        && nodes.TryGetValue(node, out var record)
        && stamp >= record.Floor
        && time.GetUtcNow().ToUnixTimeMilliseconds() - record.LastSeen <= (long)_options.NodeTimeout.TotalMilliseconds
        && record.Address.Length > 0;

    private static bool IsSuperseded(string node, EventStamp stamp, IReadOnlyDictionary<string, NodeRecord> nodes) =>
        nodes.TryGetValue(node, out var record) && stamp < record.Floor;

    private List<Peer> Order(IEnumerable<(string Node, EventStamp Stamp, long At)> holders, IReadOnlyDictionary<string, NodeRecord> nodes)
    {
        // Freshest first, in windows of FreshnessBucket: within a window every holder is as good, so they are
        // shuffled, and concurrent pullers spread over them instead of all hitting the most recent one.
        var bucketMs = Math.Max(1L, (long)_options.FreshnessBucket.TotalMilliseconds);
        return holders.GroupBy(h => h.At / bucketMs)
            .OrderByDescending(g => g.Key)
            .SelectMany(g =>
            {
                var group = g.ToArray();
                Random.Shared.Shuffle(group);
                return group;
            })
            .Select(h => new Peer(h.Node, nodes[h.Node].Address))
            .ToList();
    }
}
