using System.Text.Json;
using System.Text.Json.Serialization;
using Spegel.Core.Events;

namespace Spegel.Resolver.State;

/// <summary>A value the resolver keeps under one key; an empty one is deleted rather than written.</summary>
public interface IStateRecord
{
    [JsonIgnore]
    bool IsEmpty { get; }
}

/// <summary>One node's entry under a digest key: held, or a tombstone left by a withdrawal.</summary>
public sealed class HolderEntry
{
    public long Epoch { get; set; }

    [JsonPropertyName("seq")]
    public long Sequence { get; set; }

    /// <summary>False for a tombstone: the node withdrew the content at <see cref="Stamp"/>.</summary>
    public bool Held { get; set; }

    /// <summary>When this resolver received the event that set the entry (Unix ms, resolver clock).</summary>
    public long At { get; set; }

    [JsonIgnore]
    public EventStamp Stamp
    {
        get => new(Epoch, Sequence);
        set => (Epoch, Sequence) = (value.Epoch, value.Sequence);
    }
}

/// <summary>One node's entry under a tag key: the digest it resolved the tag to.</summary>
public sealed class BindingEntry
{
    public string Digest { get; set; } = string.Empty;

    public long Epoch { get; set; }

    [JsonPropertyName("seq")]
    public long Sequence { get; set; }

    /// <summary>False for a tombstone: the node withdrew the tag.</summary>
    public bool Held { get; set; }

    /// <summary>When this resolver first saw the node bind the tag to <see cref="Digest"/> (Unix ms): what "newest" compares.</summary>
    public long Since { get; set; }

    /// <summary>When the binding was last confirmed (Unix ms): what freshness orders by.</summary>
    public long At { get; set; }

    [JsonIgnore]
    public EventStamp Stamp
    {
        get => new(Epoch, Sequence);
        set => (Epoch, Sequence) = (value.Epoch, value.Sequence);
    }
}

/// <summary>The value of <c>digest|…</c>: per node, holder or tombstone.</summary>
public sealed class DigestRecord : IStateRecord
{
    public Dictionary<string, HolderEntry> Nodes { get; set; } = new(StringComparer.Ordinal);

    public bool IsEmpty => Nodes.Count == 0;
}

/// <summary>The value of <c>ref|…</c>: per node, the digest it resolved the tag to, or a tombstone.</summary>
public sealed class TagRecord : IStateRecord
{
    public Dictionary<string, BindingEntry> Nodes { get; set; } = new(StringComparer.Ordinal);

    public bool IsEmpty => Nodes.Count == 0;
}

/// <summary>The value of <c>node|…</c>.</summary>
public sealed class NodeRecord : IStateRecord
{
    /// <summary>The node's registry URL, from its newest event.</summary>
    public string Address { get; set; } = string.Empty;

    /// <summary>When this resolver last received a newer event from the node (Unix ms, resolver clock, never the node's).</summary>
    public long LastSeen { get; set; }

    /// <summary>The newest event stamp applied for the node.</summary>
    public long Epoch { get; set; }

    [JsonPropertyName("seq")]
    public long Sequence { get; set; }

    /// <summary>The heartbeat interval the node announced (ms); 0 when unknown.</summary>
    public long HeartbeatIntervalMs { get; set; }

    /// <summary>
    /// The stamp of the newest completed snapshot: everything the node said before it is superseded. Entries with a
    /// lower stamp are treated as withdrawn (in answers at once, physically when the snapshot's cleanup ran), and
    /// events with a lower stamp are ignored.
    /// </summary>
    public long FloorEpoch { get; set; }

    public long FloorSeq { get; set; }

    /// <summary>The newest snapshot still arriving, if any.</summary>
    public SnapshotProgress? Snapshot { get; set; }

    /// <summary>
    /// The node's recent runs (indexer starts), oldest first: the epoch each run stamps its events with, the epoch
    /// the map uses for it, and when this resolver first saw it. An indexer that restarts after its clock was stepped
    /// back stamps a lower epoch than the run before; it is mapped just above it, so a node's stamps only ever grow in
    /// the map (docs/resolver.md, "Runs").
    /// </summary>
    public List<NodeRun> Runs { get; set; } = [];

    [JsonIgnore]
    public EventStamp LastStamp
    {
        get => new(Epoch, Sequence);
        set => (Epoch, Sequence) = (value.Epoch, value.Sequence);
    }

    [JsonIgnore]
    public EventStamp Floor
    {
        get => new(FloorEpoch, FloorSeq);
        set => (FloorEpoch, FloorSeq) = (value.Epoch, value.Sequence);
    }

    [JsonIgnore]
    public bool IsEmpty => false;
}

/// <summary>One run of a node's indexer: the epoch it stamps (its start time by its clock) and the one the map uses.</summary>
public sealed class NodeRun
{
    public long Raw { get; set; }

    public long Epoch { get; set; }

    /// <summary>When this resolver first saw an event of the run (Unix ms, resolver clock).</summary>
    public long FirstSeen { get; set; }
}

/// <summary>Which parts of a snapshot (epoch, first part's sequence) have been applied.</summary>
public sealed class SnapshotProgress
{
    public long Epoch { get; set; }

    /// <summary>The snapshot id: the sequence of its first part.</summary>
    public long Id { get; set; }

    public int PartCount { get; set; }

    public SortedSet<int> Parts { get; set; } = [];

    [JsonIgnore]
    public EventStamp Stamp => new(Epoch, Id);
}

/// <summary>The value of <c>held|node|NN</c>: keys (digest or tag) in which the node has an entry.</summary>
public sealed class NodeIndexChunk : IStateRecord
{
    public SortedSet<string> Keys { get; set; } = new(StringComparer.Ordinal);

    public bool IsEmpty => Keys.Count == 0;
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DigestRecord))]
[JsonSerializable(typeof(TagRecord))]
[JsonSerializable(typeof(NodeRecord))]
[JsonSerializable(typeof(NodeIndexChunk))]
public sealed partial class ResolverStateJsonContext : JsonSerializerContext;
