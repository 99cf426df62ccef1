using System.Text.Json;

namespace Spegel.Core.Events;

/// <summary>
/// The CloudEvents 1.0 envelope Dapr puts around a published message, written the same way by the Standalone
/// transport so the resolver's subscription route sees one format whatever carried it.
/// </summary>
public static class CloudEvent
{
    public const string SpecVersion = "1.0";
    public const string EventType = "io.spegel.content.v1";

    public static byte[] Wrap(ContentEvent contentEvent, string pubSub, string topic)
    {
        ArgumentNullException.ThrowIfNull(contentEvent);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("specversion", SpecVersion);
            writer.WriteString("id", $"{contentEvent.Node}/{contentEvent.Epoch}/{contentEvent.Sequence}");
            writer.WriteString("source", $"spegel-indexer/{contentEvent.Node}");
            writer.WriteString("type", EventType);
            writer.WriteString("datacontenttype", "application/json");
            writer.WriteString("pubsubname", pubSub);
            writer.WriteString("topic", topic);
            writer.WriteString("time", contentEvent.Timestamp);
            writer.WritePropertyName("data");
            JsonSerializer.Serialize(writer, contentEvent, ContentEventJsonContext.Default.ContentEvent);
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }
}
