using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Spegel.Core.Observability;
using Spegel.Core.State;
using Spegel.Resolver.Lookup;
using Spegel.Resolver.State;

namespace Spegel.Resolver.Observability;

/// <summary>What the cluster page shows: totals, nodes, images, recent requests.</summary>
public sealed record ClusterOverview(
    DateTimeOffset Generated,
    long NodeTimeoutMs,
    ClusterTotals Totals,
    IReadOnlyList<NodeView> Nodes,
    IReadOnlyList<ImageView> Images,
    bool ImagesTruncated,
    IReadOnlyList<RecentRequest> Recent);

/// <summary>
/// Summed over the nodes whose registry answered (<see cref="Reporting"/>), since each registry started:
/// containerd requests served (hits) or not (misses), and bytes containerd got from the mirror, not upstream.
/// </summary>
public sealed record ClusterTotals(
    int Nodes, int Alive, int Reporting, long Hits, long Misses, double? HitRatio, long BytesKeptOffUpstream, long BytesFromPeers, long BytesToPeers);

/// <summary>
/// One node: liveness from its newest event (by this resolver's clock), what it holds (images: tags bound in the
/// map; digests: as the node's index lists them, withdrawn ones leaving at its next snapshot), and its registry's
/// counters, or why they are missing.
/// </summary>
public sealed record NodeView(
    string Name,
    string Address,
    bool Alive,
    DateTimeOffset? LastSeen,
    long? LastSeenAgoMs,
    int Images,
    int Digests,
    RegistryTotals? Registry,
    string? RegistryError);

/// <summary>A tag and the newest digest known for it, with the nodes bound to that digest.</summary>
public sealed record ImageView(string Reference, string Digest, IReadOnlyList<string> Nodes, int LiveNodes);

/// <summary>The answer of a search: for a tag, every node's binding; for the digest answered, every holder.</summary>
public sealed record ImageSearchResult(
    string Query, string Key, bool IsTag, string? NewestDigest, IReadOnlyList<BindingView> Bindings, IReadOnlyList<HolderView> Holders);

/// <summary>
/// A node's binding of a tag: <see cref="Current"/> false when the node's newest snapshot superseded it,
/// <see cref="Newest"/> when its digest is the one lookups answer.
/// </summary>
public sealed record BindingView(string Node, string Digest, bool Held, bool Current, bool Newest, bool Alive, DateTimeOffset Since, DateTimeOffset At);

/// <summary>A node's entry under a digest: holder or tombstone.</summary>
public sealed record HolderView(string Node, bool Held, bool Current, bool Alive, string? Address, DateTimeOffset At);

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ClusterOverview))]
[JsonSerializable(typeof(ImageSearchResult))]
[JsonSerializable(typeof(ErrorResponse))]
public sealed partial class ClusterJsonContext : JsonSerializerContext;

/// <summary>
/// Builds the cluster page's data. Nodes and the map come from the state store (the members record, the node
/// records, the nodes' indexes and the tag records, all bulk reads); request counters and recent requests come from
/// the live nodes' registries, asked in parallel on <c>GET {address}/v1/status</c> with a short timeout, only while
/// someone looks at the page. A view is reused for <see cref="ClusterPageOptions.CacheDuration"/>, the nodes'
/// indexes for <see cref="ClusterPageOptions.IndexScanInterval"/>.
/// </summary>
public sealed class ClusterView(
    ClusterMembers members,
    PeerMap map,
    IKeyValueStore store,
    IHttpClientFactory clients,
    IOptions<ResolverOptions> resolverOptions,
    IOptions<ClusterPageOptions> pageOptions,
    ResolverMetrics metrics,
    TimeProvider time)
{
    public const string StatusClientName = "registry-status";

    private const int BulkReadSize = 100;
    private const int FanOut = 32;

    private readonly Lock gate = new();
    private (DateTimeOffset At, Task<ClusterOverview> View)? cached;
    private (DateTimeOffset At, string Nodes, Dictionary<string, int> Digests, HashSet<string> Tags)? indexScan;

    public Task<ClusterOverview> OverviewAsync()
    {
        var now = time.GetUtcNow();
        lock (gate)
        {
            if (cached is { } c && (!c.View.IsCompleted || (c.View.IsCompletedSuccessfully && now - c.At < pageOptions.Value.CacheDuration)))
            {
                return c.View;
            }

            var view = BuildAsync();
            cached = (now, view);
            return view;
        }
    }

    /// <summary>Which nodes hold a tag or digest, and which digest each node bound a tag to.</summary>
    public async Task<ImageSearchResult?> SearchAsync(string? query, CancellationToken cancellationToken)
    {
        if (!LookupKey.TryParse(query?.Trim(), out var key, out _))
        {
            return null;
        }

        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var bindings = new List<BindingView>();
        string? newest = null;
        if (key.IsTag)
        {
            var tag = await map.ReadTagAsync(key.Value, cancellationToken);
            var entries = tag?.Nodes.ToList() ?? [];
            var tagNodes = await map.ReadNodesAsync([.. entries.Select(e => e.Key)], cancellationToken);
            var current = entries.Where(e => e.Value.Held && IsCurrent(e.Key, e.Value.Stamp, tagNodes)).ToList();
            newest = current.OrderByDescending(b => b.Value.Since).ThenByDescending(b => b.Value.At)
                .ThenBy(b => b.Value.Digest, StringComparer.Ordinal).Select(b => b.Value.Digest).FirstOrDefault();
            bindings.AddRange(entries
                .Select(e => new BindingView(
                    e.Key, e.Value.Digest, e.Value.Held, IsCurrent(e.Key, e.Value.Stamp, tagNodes), e.Value.Held && e.Value.Digest == newest,
                    IsAlive(e.Key, tagNodes, nowMs), FromMs(e.Value.Since), FromMs(e.Value.At)))
                .OrderByDescending(b => b.Newest).ThenBy(b => b.Node, StringComparer.Ordinal));
        }

        var digestKey = key.IsTag ? newest : key.Value;
        var holders = new List<HolderView>();
        if (digestKey is not null)
        {
            var record = await map.ReadDigestAsync(digestKey, cancellationToken);
            var entries = record?.Nodes.ToList() ?? [];
            var nodes = await map.ReadNodesAsync([.. entries.Select(e => e.Key)], cancellationToken);
            holders.AddRange(entries
                .Select(e => new HolderView(
                    e.Key, e.Value.Held, IsCurrent(e.Key, e.Value.Stamp, nodes), IsAlive(e.Key, nodes, nowMs),
                    nodes.TryGetValue(e.Key, out var n) ? n.Address : null, FromMs(e.Value.At)))
                .OrderByDescending(h => h.Held && h.Current && h.Alive).ThenBy(h => h.Node, StringComparer.Ordinal));
        }

        return new ImageSearchResult(query!.Trim(), key.Value, key.IsTag, newest, bindings, holders);
    }

    private async Task<ClusterOverview> BuildAsync()
    {
        await Task.Yield();
        var options = pageOptions.Value;
        var now = time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var ct = budget.Token;

        var names = await members.ListAsync(ct);
        var records = await map.ReadNodesAsync(names, ct);
        var alive = records.Where(r => IsAlive(r.Key, records, nowMs)).Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
        metrics.Nodes(alive.Count, records.Count);
        var shown = records.Keys
            .OrderByDescending(alive.Contains).ThenBy(n => n, StringComparer.Ordinal)
            .Take(options.MaxNodes).ToList();

        var (digestCounts, tagKeys) = await IndexesAsync(shown, now, ct);
        var truncated = tagKeys.Count > options.MaxImages;
        var images = await ReadImagesAsync([.. tagKeys.Order(StringComparer.Ordinal).Take(options.MaxImages)], records, nowMs, ct);
        var imageCounts = images.SelectMany(i => i.Bound).GroupBy(n => n, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var statuses = await FetchStatusesAsync([.. shown.Where(alive.Contains).Select(n => (n, records[n].Address))], ct);

        var nodes = shown.Select(name =>
        {
            var record = records[name];
            statuses.TryGetValue(name, out var status);
            return new NodeView(
                name,
                record.Address,
                alive.Contains(name),
                record.LastSeen > 0 ? FromMs(record.LastSeen) : null,
                record.LastSeen > 0 ? Math.Max(0, nowMs - record.LastSeen) : null,
                imageCounts.GetValueOrDefault(name),
                digestCounts.GetValueOrDefault(name),
                status.Status?.Totals,
                alive.Contains(name) ? status.Error : "node not alive");
        }).ToList();

        var reporting = statuses.Values.Where(s => s.Status is not null).Select(s => s.Status!).ToList();
        var sum = reporting.Aggregate(RegistryTotals.Zero, (a, s) => a + s.Totals);
        var hitRatio = sum.Hits + sum.Miss > 0 ? Math.Round((double)sum.Hits / (sum.Hits + sum.Miss), 4) : (double?)null;
        var totals = new ClusterTotals(records.Count, alive.Count, reporting.Count, sum.Hits, sum.Miss, hitRatio, sum.BytesKeptOffUpstream, sum.BytesFromPeers, sum.BytesToPeers);
        var recent = reporting
            .SelectMany(s => s.Recent.Select(r => r with { Node = s.Node }))
            .OrderByDescending(r => r.Time)
            .Take(options.RecentRequests)
            .ToList();

        return new ClusterOverview(
            now,
            (long)resolverOptions.Value.NodeTimeout.TotalMilliseconds,
            totals,
            nodes,
            [.. images.Select(i => i.View)],
            truncated,
            recent);
    }

    /// <summary>
    /// The nodes' indexes, reread at most every <see cref="ClusterPageOptions.IndexScanInterval"/> for the same nodes:
    /// they are <c>IndexChunks</c> keys per node, and what they say (digest counts, the tags known) changes slowly.
    /// </summary>
    private async Task<(Dictionary<string, int> Digests, HashSet<string> Tags)> IndexesAsync(IReadOnlyList<string> nodes, DateTimeOffset now, CancellationToken ct)
    {
        var key = string.Join('\n', nodes);
        if (indexScan is { } scan && scan.Nodes == key && now - scan.At < pageOptions.Value.IndexScanInterval)
        {
            return (scan.Digests, scan.Tags);
        }

        var (digests, tags) = await ReadIndexesAsync(nodes, ct);
        indexScan = (now, key, digests, tags);
        return (digests, tags);
    }

    /// <summary>Per node, how many digest keys its index lists; and every tag key any of the nodes has an entry in.</summary>
    private async Task<(Dictionary<string, int> Digests, HashSet<string> Tags)> ReadIndexesAsync(IReadOnlyList<string> nodes, CancellationToken ct)
    {
        var chunks = resolverOptions.Value.IndexChunks;
        var keys = nodes.SelectMany(n => Enumerable.Range(0, chunks).Select(i => (Node: n, Key: ResolverKeys.IndexChunk(n, i)))).ToList();
        var digests = new Dictionary<string, int>(StringComparer.Ordinal);
        var tags = new HashSet<string>(StringComparer.Ordinal);
        foreach (var batch in keys.Chunk(BulkReadSize))
        {
            var found = await store.GetManyAsync([.. batch.Select(b => b.Key)], ct);
            foreach (var (node, key) in batch)
            {
                if (!found.TryGetValue(key, out var entry))
                {
                    continue;
                }

                foreach (var indexed in map.Index.Deserialize(entry).Keys)
                {
                    if (indexed.StartsWith(ResolverKeys.DigestPrefix, StringComparison.Ordinal))
                    {
                        digests[node] = digests.GetValueOrDefault(node) + 1;
                    }
                    else if (indexed.StartsWith(ResolverKeys.TagPrefix, StringComparison.Ordinal))
                    {
                        tags.Add(indexed);
                    }
                }
            }
        }

        return (digests, tags);
    }

    private async Task<List<(ImageView View, IReadOnlyList<string> Bound)>> ReadImagesAsync(
        IReadOnlyList<string> tagKeys, IReadOnlyDictionary<string, NodeRecord> nodes, long nowMs, CancellationToken ct)
    {
        var images = new List<(ImageView, IReadOnlyList<string>)>();
        foreach (var batch in tagKeys.Chunk(BulkReadSize))
        {
            var found = await store.GetManyAsync(batch, ct);
            foreach (var key in batch)
            {
                if (!found.TryGetValue(key, out var entry))
                {
                    continue;
                }

                var record = map.Tags.Deserialize(entry);
                var current = record.Nodes.Where(b => b.Value.Held && IsCurrent(b.Key, b.Value.Stamp, nodes)).ToList();
                if (current.Count == 0)
                {
                    continue;
                }

                var newest = current.OrderByDescending(b => b.Value.Since).ThenByDescending(b => b.Value.At)
                    .ThenBy(b => b.Value.Digest, StringComparer.Ordinal).First().Value.Digest;
                var bound = current.Where(b => b.Value.Digest == newest).Select(b => b.Key).Order(StringComparer.Ordinal).ToList();
                var reference = key[ResolverKeys.TagPrefix.Length..];
                images.Add((new ImageView(reference, newest, bound, bound.Count(n => IsAlive(n, nodes, nowMs))), [.. current.Select(b => b.Key)]));
            }
        }

        return images;
    }

    private async Task<ConcurrentDictionary<string, (RegistryStatus? Status, string? Error)>> FetchStatusesAsync(IReadOnlyList<(string Node, string Address)> nodes, CancellationToken ct)
    {
        var results = new ConcurrentDictionary<string, (RegistryStatus?, string?)>(StringComparer.Ordinal);
        var timeout = pageOptions.Value.StatusTimeout;
        var client = clients.CreateClient(StatusClientName);
        await Parallel.ForEachAsync(nodes, new ParallelOptions { MaxDegreeOfParallelism = FanOut, CancellationToken = ct }, async (node, token) =>
        {
            if (!Uri.TryCreate(node.Address, UriKind.Absolute, out var address))
            {
                results[node.Node] = (null, "no registry address");
                return;
            }

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(token);
            deadline.CancelAfter(timeout);
            try
            {
                var status = await client.GetFromJsonAsync(new Uri(address, "/v1/status"), RegistryStatusJsonContext.Default.RegistryStatus, deadline.Token);
                results[node.Node] = status is null ? (null, "empty answer") : (status, null);
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or System.Text.Json.JsonException or NotSupportedException)
            {
                results[node.Node] = (null, ex is OperationCanceledException ? $"no answer within {timeout.TotalMilliseconds} ms" : ex.Message);
            }
        });
        return results;
    }

    private bool IsAlive(string node, IReadOnlyDictionary<string, NodeRecord> nodes, long nowMs) =>
        nodes.TryGetValue(node, out var record) && record.LastSeen > 0
        && nowMs - record.LastSeen <= (long)resolverOptions.Value.NodeTimeout.TotalMilliseconds;

    private static bool IsCurrent(string node, Spegel.Core.Events.EventStamp stamp, IReadOnlyDictionary<string, NodeRecord> nodes) =>
        !nodes.TryGetValue(node, out var record) || stamp >= record.Floor;

    private static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
