using System.Text.Json;
using System.Text.Json.Serialization;

namespace Spegel.Core.Events;

/// <summary>
/// What an indexer tells the resolvers about one node. Every event carries the node's ordering stamp
/// (<see cref="Epoch"/>, <see cref="Sequence"/>): the epoch changes each time the indexer starts (its start time in
/// Unix milliseconds, so a restart always sorts after the run before it), the sequence grows within an epoch.
/// A resolver never lets an event with a lower stamp undo one with a higher stamp, so redelivered or reordered
/// events cannot resurrect withdrawn content. Comparisons are per node only: clocks of different nodes are
/// never compared with each other.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind", UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(ContentAdvertised), ContentAdvertised.Kind)]
[JsonDerivedType(typeof(ContentWithdrawn), ContentWithdrawn.Kind)]
[JsonDerivedType(typeof(NodeSnapshot), NodeSnapshot.Kind)]
[JsonDerivedType(typeof(NodeHeartbeat), NodeHeartbeat.Kind)]
public abstract record ContentEvent
{
    /// <summary>The event schema version; a resolver drops versions it does not know.</summary>
    public const int CurrentVersion = 1;

    public int Version { get; init; } = CurrentVersion;

    /// <summary>The node's name, as <c>Spegel:Node:Name</c> sets it.</summary>
    public required string Node { get; init; }

    /// <summary>The URL of the node's registry that peers use.</summary>
    public required string Address { get; init; }

    public required long Epoch { get; init; }

    public required long Sequence { get; init; }

    /// <summary>When the indexer produced the event, by the node's clock (informational, never used to order across nodes).</summary>
    public required DateTimeOffset Timestamp { get; init; }

    [JsonIgnore]
    public EventStamp Stamp => new(Epoch, Sequence);
}

/// <summary>The node now holds these digests, and resolved these tags to these digests (an image was created or updated).</summary>
public sealed record ContentAdvertised : ContentEvent
{
    public const string Kind = "advertised";

    public IReadOnlyList<TagBinding> Tags { get; init; } = [];

    public IReadOnlyList<string> Digests { get; init; } = [];
}

/// <summary>The node no longer holds these digests or tags (an image was deleted; shared layers are not listed).</summary>
public sealed record ContentWithdrawn : ContentEvent
{
    public const string Kind = "withdrawn";

    /// <summary>Tag references (<c>registry/repo:tag</c>) the node no longer resolves.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    public IReadOnlyList<string> Digests { get; init; } = [];
}

/// <summary>
/// One part of everything the node holds, sent at start and after every reconnect to containerd.
/// When all <see cref="PartCount"/> parts of a snapshot (same epoch and <see cref="SnapshotId"/>) have arrived,
/// whatever the resolver still lists for the node with an older stamp is withdrawn: content deleted while the
/// indexer was away stops being offered. Parts keep each message under the pub/sub size limit.
/// </summary>
public sealed record NodeSnapshot : ContentEvent
{
    public const string Kind = "snapshot";

    /// <summary>The sequence number of the snapshot's first part; all parts share it.</summary>
    public required long SnapshotId { get; init; }

    /// <summary>This part's one-based number: 1 ≤ <see cref="Part"/> ≤ <see cref="PartCount"/>.</summary>
    public required int Part { get; init; }

    public required int PartCount { get; init; }

    public IReadOnlyList<TagBinding> Tags { get; init; } = [];

    public IReadOnlyList<string> Digests { get; init; } = [];
}

/// <summary>The node is alive. A node silent past the resolver's node timeout is left out of every answer.</summary>
public sealed record NodeHeartbeat : ContentEvent
{
    public const string Kind = "heartbeat";

    /// <summary>How often the indexer sends heartbeats, so resolvers can tell a late one from a lost node.</summary>
    public TimeSpan Interval { get; init; }
}

/// <summary>A tag reference (<c>docker.io/library/nginx:1.27</c>) and the digest this node resolved it to.</summary>
public sealed record TagBinding(string Reference, string Digest);

/// <summary>Per-node ordering of events: epoch first, then sequence.</summary>
public readonly record struct EventStamp(long Epoch, long Sequence) : IComparable<EventStamp>
{
    public int CompareTo(EventStamp other) =>
        Epoch != other.Epoch ? Epoch.CompareTo(other.Epoch) : Sequence.CompareTo(other.Sequence);

    public static bool operator <(EventStamp left, EventStamp right) => left.CompareTo(right) < 0;

    public static bool operator >(EventStamp left, EventStamp right) => left.CompareTo(right) > 0;

    public static bool operator <=(EventStamp left, EventStamp right) => left.CompareTo(right) <= 0;

    public static bool operator >=(EventStamp left, EventStamp right) => left.CompareTo(right) >= 0;
}

/// <summary>Names shared by publisher and subscriber: never string literals at call sites.</summary>
public static class ContentTopics
{
    public const string DefaultTopic = "content";
    public const string DefaultPubSub = "spegel-pubsub";
    public const string DefaultStateStore = "spegel-state";

    /// <summary>The resolver's subscription route; Standalone indexers POST CloudEvents here too.</summary>
    public const string SubscriptionRoute = "/events/content";
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ContentEvent))]
[JsonSerializable(typeof(ContentAdvertised))]
[JsonSerializable(typeof(ContentWithdrawn))]
[JsonSerializable(typeof(NodeSnapshot))]
[JsonSerializable(typeof(NodeHeartbeat))]
public sealed partial class ContentEventJsonContext : JsonSerializerContext;
