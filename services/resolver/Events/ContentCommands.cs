using Mediator;
using Spegel.Resolver.State;

namespace Spegel.Resolver.Events;

/// <summary>What applying an event came to, and so what the subscription answers Dapr.</summary>
public enum EventOutcome
{
    /// <summary>The map changed.</summary>
    Applied,

    /// <summary>Nothing to change: a duplicate, or an event older than what the map already has for the node.</summary>
    Unchanged,

    /// <summary>Compare-and-swap races could not be won in time: ask for redelivery (RETRY).</summary>
    Contended,
}

/// <summary>A node advertised content (<see cref="Spegel.Core.Events.ContentAdvertised"/>, validated and normalised).</summary>
public sealed record AdvertiseContent(NodeFacts Node, IReadOnlyList<string> Digests, IReadOnlyList<TagBindingKey> Tags) : ICommand<EventOutcome>;

/// <summary>A node withdrew content (<see cref="Spegel.Core.Events.ContentWithdrawn"/>).</summary>
public sealed record WithdrawContent(NodeFacts Node, IReadOnlyList<string> Digests, IReadOnlyList<string> TagKeys) : ICommand<EventOutcome>;

/// <summary>One part of a node's full statement (<see cref="Spegel.Core.Events.NodeSnapshot"/>).</summary>
public sealed record ApplySnapshotPart(NodeFacts Node, long SnapshotId, int Part, int PartCount, IReadOnlyList<string> Digests, IReadOnlyList<TagBindingKey> Tags)
    : ICommand<EventOutcome>;

/// <summary>A node is alive (<see cref="Spegel.Core.Events.NodeHeartbeat"/>).</summary>
public sealed record RecordHeartbeat(NodeFacts Node, TimeSpan Interval) : ICommand<EventOutcome>;
