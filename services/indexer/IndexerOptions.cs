using Spegel.Core.Events;
using Spegel.Hosting;

namespace Spegel.Indexer;

/// <summary>The indexer's options (<c>Spegel:Indexer:*</c>).</summary>
public sealed class IndexerOptions : IValidatableOptions
{
    public const string SectionName = "Spegel:Indexer";

    /// <summary>How often the node tells the resolvers it is alive. Keep it well under the resolver's node timeout.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How often the whole node content is sent again, healing any event lost on the way and a resolver that lost its memory.</summary>
    public TimeSpan ResyncInterval { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The longest wait between attempts to reach containerd or the resolver.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The largest event message; snapshots and big images are split below it (pub/sub brokers cap message sizes).</summary>
    public int MaxMessageBytes { get; set; } = 256 * 1024;

    /// <summary>
    /// Heartbeat only while this node's registry answers at <c>Spegel:Node:Address</c> (once it has answered since
    /// start): a node whose registry stopped leaves every answer within the resolver's node timeout.
    /// </summary>
    public bool ProbeRegistry { get; set; } = true;

    public string PubSub { get; set; } = ContentTopics.DefaultPubSub;

    public string Topic { get; set; } = ContentTopics.DefaultTopic;

    public IEnumerable<string> Validate()
    {
        if (HeartbeatInterval < TimeSpan.FromMilliseconds(100) || HeartbeatInterval > TimeSpan.FromMinutes(1))
        {
            yield return $"Spegel:Indexer:HeartbeatInterval must be between 100 ms and 1 minute, not {HeartbeatInterval}.";
        }

        if (ResyncInterval < TimeSpan.FromSeconds(5))
        {
            yield return $"Spegel:Indexer:ResyncInterval must be at least 5 seconds, not {ResyncInterval}.";
        }

        if (MaxBackoff < TimeSpan.FromMilliseconds(50))
        {
            yield return $"Spegel:Indexer:MaxBackoff must be at least 50 ms, not {MaxBackoff}.";
        }

        if (MaxMessageBytes < 4 * 1024)
        {
            yield return $"Spegel:Indexer:MaxMessageBytes must be at least 4096, not {MaxMessageBytes}.";
        }

        if (string.IsNullOrWhiteSpace(PubSub))
        {
            yield return "Spegel:Indexer:PubSub must name the Dapr pub/sub component.";
        }

        if (string.IsNullOrWhiteSpace(Topic))
        {
            yield return "Spegel:Indexer:Topic must not be empty.";
        }
    }
}
