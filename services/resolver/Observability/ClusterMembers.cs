using System.Collections.Concurrent;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Spegel.Core.State;
using Spegel.Resolver.State;

namespace Spegel.Resolver.Observability;

/// <summary>The value of <c>members|all</c>: every node name the resolvers have heard from, with when it was first seen.</summary>
public sealed class MembersRecord : IStateRecord
{
    public Dictionary<string, long> Nodes { get; set; } = new(StringComparer.Ordinal);

    [JsonIgnore]
    public bool IsEmpty => Nodes.Count == 0;
}

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(MembersRecord))]
public sealed partial class MembersJsonContext : JsonSerializerContext;

/// <summary>
/// Which nodes exist, for the cluster page and the node gauges. The state API cannot list keys, so the node names
/// are kept in one record, <c>members|all</c>: a node is added the first time this process receives an event from
/// it (one compare-and-swap per new node per resolver; later events only hit a local cache, re-checked every ten
/// minutes), and dropped when its <c>node|…</c> record has expired (<c>Spegel:Resolver:NodeRetention</c>).
/// </summary>
public sealed class ClusterMembers
{
    public const string Key = "members|all";

    private static readonly TimeSpan Recheck = TimeSpan.FromMinutes(10);

    private readonly ConcurrentDictionary<string, DateTimeOffset> confirmed = new(StringComparer.Ordinal);
    private readonly RecordUpdater<MembersRecord> updater;
    private readonly TimeProvider time;

    public ClusterMembers(IKeyValueStore store, IOptions<ResolverOptions> options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.time = time;
        updater = new RecordUpdater<MembersRecord>(store, MembersJsonContext.Default.MembersRecord, time,
            new UpdatePolicy(options.Value.UpdateTimeout, options.Value.UpdateAttempts));
    }

    /// <summary>Makes sure <paramref name="node"/> is listed; cheap after the first call for a node.</summary>
    public async Task ObserveAsync(string node)
    {
        var now = time.GetUtcNow();
        if (confirmed.TryGetValue(node, out var at) && now - at < Recheck)
        {
            return;
        }

        var outcome = await updater.UpdateAsync(Key, record => record.Nodes.TryAdd(node, now.ToUnixTimeMilliseconds()));
        if (outcome != UpdateOutcome.Contended)
        {
            confirmed[node] = now;
        }
    }

    /// <summary>Every listed node name.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken = default)
    {
        var record = await updater.ReadAsync(Key, cancellationToken);
        return record is null ? [] : [.. record.Nodes.Keys.Order(StringComparer.Ordinal)];
    }

    /// <summary>Drops nodes that no longer exist (their node record expired).</summary>
    public async Task ForgetAsync(IReadOnlyCollection<string> nodes)
    {
        if (nodes.Count == 0)
        {
            return;
        }

        await updater.UpdateAsync(Key, record => nodes.Aggregate(false, (changed, node) => record.Nodes.Remove(node) | changed));
        foreach (var node in nodes)
        {
            confirmed.TryRemove(node, out _);
        }
    }
}
