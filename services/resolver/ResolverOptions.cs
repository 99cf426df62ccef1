using Spegel.Core.Events;
using Spegel.Hosting;

namespace Spegel.Resolver;

/// <summary>The resolver's settings (<c>Spegel:Resolver:*</c>).</summary>
public sealed class ResolverOptions : IValidatableOptions
{
    public const string SectionName = "Spegel:Resolver";

    /// <summary>The pub/sub component the content topic lives on (Dapr mode).</summary>
    public string PubSub { get; set; } = ContentTopics.DefaultPubSub;

    /// <summary>The topic indexers publish content events on.</summary>
    public string Topic { get; set; } = ContentTopics.DefaultTopic;

    /// <summary>The state store component that holds the map (Dapr mode).</summary>
    public string StateStore { get; set; } = ContentTopics.DefaultStateStore;

    /// <summary>A node heard from longer ago than this (by this resolver's clock) is left out of every answer.</summary>
    public TimeSpan NodeTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The time to live of a node's record (refreshed by every event it sends); a node silent this long is forgotten.</summary>
    public TimeSpan NodeRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// How old this resolver's in-memory copy of the node records (liveness, address, snapshot floor) may get before
    /// the next lookup re-reads it from the store in bulk: the bound on how late heartbeats, address changes and
    /// snapshots applied by <em>another</em> resolver replica are seen. Its own events are seen at once. Shorter than
    /// <see cref="NodeTimeout"/>; unset, 1 s or a quarter of <see cref="NodeTimeout"/>, whichever is shorter (so a short
    /// node timeout stays valid without setting this too). See docs/resolver.md, "Liveness view".
    /// </summary>
    public TimeSpan? LivenessRefresh { get; set; }

    /// <summary>The refresh interval in force: <see cref="LivenessRefresh"/> when set, else the default above.</summary>
    public TimeSpan EffectiveLivenessRefresh =>
        LivenessRefresh ?? TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, Math.Max(1, NodeTimeout.Ticks / 4)));

    /// <summary>
    /// At most this many peers per answer, freshest first (a registry tries at most <c>Spegel:MirrorResolveRetries</c>,
    /// default 3, per request): an answer need not order and serialise every one of 1,000 holders.
    /// </summary>
    public int MaxPeers { get; set; } = 10;

    /// <summary>How long a withdrawal's tombstone is kept at least; longer than any redelivery of an older event can take.</summary>
    public TimeSpan TombstoneRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Holders confirmed within the same window of this size count as equally fresh, and are shuffled.</summary>
    public TimeSpan FreshnessBucket { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an event may spend winning compare-and-swap races before the resolver asks for a redelivery.</summary>
    public TimeSpan UpdateTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>At most this many compare-and-swap attempts per update, within <see cref="UpdateTimeout"/>.</summary>
    public int UpdateAttempts { get; set; } = 100;

    /// <summary>
    /// How many keys a node's index of what it holds is split across (fixed for a cluster's lifetime). Every event
    /// rewrites the chunks its keys fall in, so chunks must stay small: with 5,000 digests per node, 256 chunks
    /// ingest 7.3× faster than 16 (bench/Spegel.ResolverBench, docs/benchmarks.md); a snapshot reads them all in
    /// three bulk reads.
    /// </summary>
    public int IndexChunks { get; set; } = 256;

    /// <summary>
    /// CIDRs (IPv4 or IPv6) a node's advertised address must fall in, e.g. the pod or node network; an event naming
    /// any other address is dropped. Empty: any IP literal. Host names, link-local (metadata) and unspecified
    /// addresses are always refused unless a listed network lies inside their range. See docs/resolver.md.
    /// </summary>
    public List<string> PeerNetworks { get; } = [];

    public IEnumerable<string> Validate()
    {
        foreach (var network in PeerNetworks)
        {
            if (!Events.NodeAddressPolicy.TryParseNetwork(network, out _))
            {
                yield return $"{SectionName}:PeerNetworks entry '{network}' is not a CIDR such as 10.0.0.0/8 or fd00::/8 (no bits set past the prefix) or a single IP address.";
            }
        }

        foreach (var (name, value) in new[] { (nameof(PubSub), PubSub), (nameof(Topic), Topic), (nameof(StateStore), StateStore) })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                yield return $"{SectionName}:{name} must not be empty.";
            }
        }

        foreach (var (name, value) in new[]
                 {
                     (nameof(NodeTimeout), NodeTimeout), (nameof(NodeRetention), NodeRetention), (nameof(TombstoneRetention), TombstoneRetention),
                     (nameof(FreshnessBucket), FreshnessBucket), (nameof(UpdateTimeout), UpdateTimeout), (nameof(LivenessRefresh), EffectiveLivenessRefresh),
                 })
        {
            if (value <= TimeSpan.Zero)
            {
                yield return $"{SectionName}:{name} must be a positive duration, not '{value}'.";
            }
        }

        if (NodeRetention > TimeSpan.Zero && NodeRetention < NodeTimeout)
        {
            yield return $"{SectionName}:NodeRetention ({NodeRetention}) must not be shorter than {SectionName}:NodeTimeout ({NodeTimeout}).";
        }

        if (LivenessRefresh is { } refresh && refresh > TimeSpan.Zero && NodeTimeout > TimeSpan.Zero && refresh >= NodeTimeout)
        {
            yield return $"{SectionName}:LivenessRefresh ({LivenessRefresh}) must be shorter than {SectionName}:NodeTimeout ({NodeTimeout}).";
        }

        if (MaxPeers is < 1 or > 1000)
        {
            yield return $"{SectionName}:MaxPeers must be between 1 and 1000, not {MaxPeers}.";
        }

        if (UpdateAttempts < 1)
        {
            yield return $"{SectionName}:UpdateAttempts must be at least 1, not {UpdateAttempts}.";
        }

        if (IndexChunks is < 1 or > 4096)
        {
            yield return $"{SectionName}:IndexChunks must be between 1 and 4096, not {IndexChunks}.";
        }
    }
}
