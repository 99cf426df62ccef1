using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Hosting;

namespace Spegel.Indexer;

/// <summary>
/// Standalone transport: POSTs the same CloudEvent that Dapr would deliver straight to the resolver's
/// subscription route, and honours the same answers (SUCCESS, RETRY, DROP).
/// </summary>
public sealed partial class StandaloneContentEventPublisher(
    HttpClient http,
    IOptions<ResolverClientOptions> resolver,
    IOptions<IndexerOptions> options,
    ILogger<StandaloneContentEventPublisher> logger) : IContentEventPublisher
{
    private static readonly MediaTypeHeaderValue CloudEventsJson = new("application/cloudevents+json");

    public async Task PublishAsync(ContentEvent contentEvent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(contentEvent);
        var envelope = CloudEvent.Wrap(contentEvent, options.Value.PubSub, options.Value.Topic);
        using var content = new ByteArrayContent(envelope);
        content.Headers.ContentType = CloudEventsJson;
        var url = new Uri(new Uri(resolver.Value.Url!), ContentTopics.SubscriptionRoute);
        using var response = await http.PostAsync(url, content, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"resolver answered {(int)response.StatusCode} to {url}", null, response.StatusCode);
        }

        var status = await ReadStatusAsync(response, cancellationToken);
        if (string.Equals(status, "RETRY", StringComparison.OrdinalIgnoreCase))
        {
            throw new HttpRequestException($"resolver asked to retry {contentEvent.GetType().Name} {contentEvent.Sequence}");
        }

        if (string.Equals(status, "DROP", StringComparison.OrdinalIgnoreCase))
        {
            LogDropped(contentEvent.GetType().Name, contentEvent.Sequence);
        }
    }

    private static async Task<string?> ReadStatusAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("status", out var s) ? s.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "resolver dropped event {kind} {sequence}")]
    private partial void LogDropped(string kind, long sequence);
}
