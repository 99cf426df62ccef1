using System.Runtime.InteropServices;
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
/// clock), entries below a node's snapshot floor left out, the freshest first with equals shuffled to spread load,
/// at most <see cref="ResolverOptions.MaxPeers"/>. A tag answers only the nodes whose binding is the newest digest
/// known for it. The key's record is read from the store on every lookup (so a withdrawal shows at once); the
/// holders' node records come from the in-memory <see cref="NodeLivenessView"/>, not one store read per holder.
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
        if (record is null || !record.Nodes.Values.Any(e => e.Held))
        {
            return new PeersResponse(digest, null, []);
        }

        var nodes = map.Liveness;
        await nodes.PrepareAsync(record.Nodes.Where(n => n.Value.Held).Select(n => n.Key), cancellationToken);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var answerable = new List<Candidate>(record.Nodes.Count);
        foreach (var (node, entry) in record.Nodes)
        {
            if (entry.Held && IsAnswerable(node, entry.Stamp, exclude, now, out var address))
            {
                answerable.Add(new Candidate(node, address, Window(entry.At)));
            }
        }

        return new PeersResponse(digest, null, Order(answerable));
    }

    private async Task<PeersResponse> LookupTagAsync(string tagKey, string? exclude, CancellationToken cancellationToken)
    {
        var record = await map.ReadTagAsync(tagKey, cancellationToken);
        var bindings = record?.Nodes.Where(n => n.Value.Held).ToList() ?? [];
        if (bindings.Count == 0)
        {
            return new PeersResponse(tagKey, null, []);
        }

        var nodes = map.Liveness;
        await nodes.PrepareAsync(bindings.Select(b => b.Key), cancellationToken);

        // Newest = the binding this resolver first saw latest, among bindings not superseded by their node's snapshot,
        // live node or not: a digest that only a dead node knew is still the newest, and then nobody is answered
        // (the pull goes upstream) rather than an older digest.
        var current = bindings.Where(b => !IsSuperseded(b.Key, b.Value.Stamp)).ToList();
        if (current.Count == 0)
        {
            return new PeersResponse(tagKey, null, []);
        }

        var newest = current.OrderByDescending(b => b.Value.Since).ThenByDescending(b => b.Value.At)
            .ThenBy(b => b.Value.Digest, StringComparer.Ordinal).First().Value.Digest;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var answerable = new List<Candidate>();
        foreach (var (node, binding) in current)
        {
            if (binding.Digest == newest && IsAnswerable(node, binding.Stamp, exclude, now, out var address))
            {
                answerable.Add(new Candidate(node, address, Window(binding.At)));
            }
        }

        return new PeersResponse(tagKey, newest, Order(answerable));
    }

    private bool IsAnswerable(string node, EventStamp stamp, string? exclude, long nowMs, out string address)
    {
        address = string.Empty;
        if (string.Equals(node, exclude, StringComparison.Ordinal) || !map.Liveness.TryGet(node, out var known))
        {
            return false;
        }

        address = known.Address;
        return stamp >= known.Floor
            && nowMs - known.LastSeen <= (long)_options.NodeTimeout.TotalMilliseconds
            && known.Address.Length > 0;
    }

    private bool IsSuperseded(string node, EventStamp stamp) =>
        map.Liveness.TryGet(node, out var known) && stamp < known.Floor;

    private List<Peer> Order(List<Candidate> holders)
    {
        // Freshest first, in windows of FreshnessBucket: within a window every holder is as good, so they are
        // shuffled, and concurrent pullers spread over them instead of all hitting the most recent one. Sorted and
        // shuffled in place, window by window, only until MaxPeers are taken: a registry tries a handful, never 1,000.
        var span = CollectionsMarshal.AsSpan(holders);
        span.Sort(static (a, b) => b.Window.CompareTo(a.Window));
        var peers = new List<Peer>(Math.Min(span.Length, _options.MaxPeers));
        for (var start = 0; start < span.Length && peers.Count < _options.MaxPeers;)
        {
            var end = start + 1;
            while (end < span.Length && span[end].Window == span[start].Window)
            {
                end++;
            }

            var window = span[start..end];
            Random.Shared.Shuffle(window);
            foreach (var holder in window[..Math.Min(window.Length, _options.MaxPeers - peers.Count)])
            {
                peers.Add(new Peer(holder.Node, holder.Address));
            }

            start = end;
        }

        return peers;
    }

    private long Window(long atMs) => atMs / Math.Max(1L, (long)_options.FreshnessBucket.TotalMilliseconds);

    /// <summary>A holder that may be answered, and the freshness window it was last confirmed in.</summary>
    private readonly record struct Candidate(string Node, string Address, long Window);
}
