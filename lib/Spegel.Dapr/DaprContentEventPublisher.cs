using System.Text.Json;
using Dapr.Client;
using Spegel.Core.Events;
using Spegel.Core.State;

namespace Spegel.Dapr;

/// <summary>
/// Publishes content events on a Dapr pub/sub topic. The payload is serialized here with
/// <see cref="ContentEventJsonContext"/> (polymorphic, <c>kind</c> first) rather than by the DaprClient's own
/// serializer options, so the wire format is the contract's whatever the client was configured with; the sidecar
/// wraps it in a CloudEvent with <c>datacontenttype: application/json</c>.
/// </summary>
public sealed class DaprContentEventPublisher : IContentEventPublisher
{
    /// <summary>Brokers that partition (Kafka) key messages by this, so one node's events stay in order.</summary>
    public const string PartitionKeyMetadata = "partitionKey";

    private const string JsonContentType = "application/json";

    private readonly DaprClient _client;

    public DaprContentEventPublisher(DaprClient client, string pubSubName, string topic)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(pubSubName);
        ArgumentException.ThrowIfNullOrWhiteSpace(topic);
        _client = client;
        PubSubName = pubSubName;
        Topic = topic;
    }

    public string PubSubName { get; }

    public string Topic { get; }

    /// <summary>The exact bytes published for <paramref name="contentEvent"/>.</summary>
    public static byte[] Serialize(ContentEvent contentEvent) =>
        JsonSerializer.SerializeToUtf8Bytes(contentEvent, ContentEventJsonContext.Default.ContentEvent);

    public Task PublishAsync(ContentEvent contentEvent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(contentEvent);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { [PartitionKeyMetadata] = contentEvent.Node };
        return _client.PublishByteEventAsync(PubSubName, Topic, Serialize(contentEvent), JsonContentType, metadata, cancellationToken);
    }
}
