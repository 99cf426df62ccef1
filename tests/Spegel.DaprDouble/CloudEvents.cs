using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spegel.DaprDouble;

/// <summary>A published message as the broker holds it: the CloudEvent envelope, and the payload for raw subscribers.</summary>
/// <param name="Id">The CloudEvent id.</param>
/// <param name="PubSub">The pub/sub component name.</param>
/// <param name="Topic">The topic.</param>
/// <param name="CloudEvent">The envelope, serialised as delivered (content type <c>application/cloudevents+json</c>).</param>
/// <param name="Attributes">The envelope's top-level string attributes, for routing rules.</param>
/// <param name="Data">The payload bytes, for <c>rawPayload</c> subscriptions.</param>
/// <param name="DataContentType">The payload content type.</param>
/// <param name="ExpiresAt">When the message expires (<c>ttlInSeconds</c> on publish); expired messages are not delivered.</param>
internal sealed record BrokerMessage(
    string Id,
    string PubSub,
    string Topic,
    byte[] CloudEvent,
    IReadOnlyDictionary<string, string> Attributes,
    byte[] Data,
    string DataContentType,
    DateTimeOffset? ExpiresAt)
{
    /// <summary>The same message re-addressed (dead-letter topics keep the event, change the topic).</summary>
    public BrokerMessage WithTopic(string topic)
    {
        var envelope = JsonNode.Parse(CloudEvent)!.AsObject();
        envelope["topic"] = topic;
        var bytes = JsonSerializer.SerializeToUtf8Bytes(envelope);
        var attributes = new Dictionary<string, string>(Attributes, StringComparer.Ordinal) { ["topic"] = topic };
        return this with { Topic = topic, CloudEvent = bytes, Attributes = attributes };
    }
}

/// <summary>Builds the CloudEvents 1.0 envelope the way daprd does when an app publishes.</summary>
internal static class CloudEvents
{
    public const string ContentType = "application/cloudevents+json";
    private const string DefaultType = "com.dapr.event.sent";
    private const string DefaultDataContentType = "text/plain";

    /// <summary>Wraps (or, for a CloudEvent given by the app, completes) the published data.</summary>
    public static BrokerMessage Create(
        string sourceAppId,
        string pubsub,
        string topic,
        byte[] data,
        string? dataContentType,
        IReadOnlyDictionary<string, string> metadata,
        string? traceParent,
        DateTimeOffset now)
    {
        var contentType = string.IsNullOrEmpty(dataContentType) ? DefaultDataContentType : dataContentType;
        var raw = metadata.TryGetValue("rawPayload", out var rawText) && bool.TryParse(rawText, out var isRaw) && isRaw;
        traceParent ??= NewTraceParent();

        JsonObject envelope;
        byte[] payload = data;
        string payloadType = contentType;
        if (!raw && IsCloudEvent(contentType))
        {
            // The app sent its own CloudEvent: daprd keeps it and fills what is missing.
            envelope = JsonNode.Parse(data) as JsonObject
                ?? throw DaprApiException.CloudEventInvalid(topic, pubsub, "the data is not a JSON object");
            envelope.TryAdd("specversion", "1.0");
            envelope.TryAdd("id", Guid.NewGuid().ToString());
            envelope.TryAdd("source", sourceAppId);
            envelope.TryAdd("type", DefaultType);
            envelope.TryAdd("datacontenttype", "application/json");
            (payload, payloadType) = ExtractData(envelope);
        }
        else
        {
            envelope = new JsonObject
            {
                ["specversion"] = "1.0",
                ["id"] = Guid.NewGuid().ToString(),
                ["source"] = sourceAppId,
                ["type"] = DefaultType,
            };
            if (raw)
            {
                // A raw message reaching a CloudEvent subscriber is wrapped as bytes, as daprd does.
                envelope["datacontenttype"] = "application/octet-stream";
                envelope["data_base64"] = Convert.ToBase64String(data);
            }
            else
            {
                envelope["datacontenttype"] = contentType;
                PlaceData(envelope, data, contentType);
            }
        }

        envelope["topic"] = topic;
        envelope["pubsubname"] = pubsub;
        envelope["traceid"] = traceParent;
        envelope["traceparent"] = traceParent;
        envelope["tracestate"] = "";
        envelope.TryAdd("time", now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));

        // Publish metadata "cloudevent.<attr>" overrides the envelope's attributes.
        foreach (var (key, value) in metadata)
        {
            if (key.StartsWith("cloudevent.", StringComparison.OrdinalIgnoreCase))
            {
                envelope[key["cloudevent.".Length..].ToLowerInvariant()] = value;
            }
        }

        DateTimeOffset? expiresAt = null;
        if (metadata.TryGetValue("ttlInSeconds", out var ttlText)
            && int.TryParse(ttlText, NumberStyles.None, CultureInfo.InvariantCulture, out var ttl) && ttl > 0)
        {
            expiresAt = now.AddSeconds(ttl);
            envelope["expiration"] = expiresAt.Value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        }

        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, node) in envelope)
        {
            if (node is JsonValue value && value.TryGetValue<string>(out var text))
            {
                attributes[name] = text;
            }
        }

        return new BrokerMessage(
            attributes.GetValueOrDefault("id") ?? Guid.NewGuid().ToString(),
            pubsub,
            topic,
            JsonSerializer.SerializeToUtf8Bytes(envelope),
            attributes,
            payload,
            payloadType,
            expiresAt);
    }

    public static bool IsJson(string contentType)
    {
        var mediaType = contentType.Split(';')[0].Trim();
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("text/json", StringComparison.OrdinalIgnoreCase)
            || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    private static bool IsCloudEvent(string contentType) =>
        contentType.Split(';')[0].Trim().Equals(ContentType, StringComparison.OrdinalIgnoreCase);

    private static void PlaceData(JsonObject envelope, byte[] data, string contentType)
    {
        if (IsJson(contentType))
        {
            try
            {
                envelope["data"] = JsonNode.Parse(data);
                return;
            }
            catch (JsonException)
            {
                // Not valid JSON after all: keep it as text.
            }
        }

        var mediaType = contentType.Split(';')[0].Trim();
        if (mediaType.StartsWith("text/", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("application/xml", StringComparison.OrdinalIgnoreCase)
            || IsJson(contentType))
        {
            envelope["data"] = Encoding.UTF8.GetString(data);
        }
        else
        {
            envelope["data_base64"] = Convert.ToBase64String(data);
        }
    }

    private static (byte[] Payload, string ContentType) ExtractData(JsonObject envelope)
    {
        var contentType = envelope["datacontenttype"]?.GetValue<string>() ?? "application/json";
        if (envelope["data_base64"] is JsonValue b64 && b64.TryGetValue<string>(out var base64))
        {
            return (Convert.FromBase64String(base64), contentType);
        }

        return envelope["data"] switch
        {
            null => ([], contentType),
            JsonValue value when value.TryGetValue<string>(out var text) && !IsJson(contentType) => (Encoding.UTF8.GetBytes(text), contentType),
            var node => (JsonSerializer.SerializeToUtf8Bytes(node), contentType),
        };
    }

    private static string NewTraceParent()
    {
        Span<byte> bytes = stackalloc byte[24];
        RandomNumberGenerator.Fill(bytes);
        return $"00-{Convert.ToHexStringLower(bytes[..16])}-{Convert.ToHexStringLower(bytes[16..])}-01";
    }
}
