using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Spegel.Core.Events;
using Spegel.Core.Routing;

namespace Spegel.EndToEnd.Tests.Cluster;

/// <summary>The resolver as the tests see it from outside: the lookup route, and the subscription route indexers POST to.</summary>
public sealed class ResolverApi(Uri baseUri)
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };

    public Uri BaseUri { get; } = baseUri;

    /// <summary><c>GET /v1/peers?key=…[&amp;exclude=…]</c>.</summary>
    public async Task<PeersResponse> LookupAsync(string key, string? exclude = null, CancellationToken ct = default)
    {
        using var response = await Http.GetAsync(new Uri(BaseUri, PeersRoute.For(key, exclude)), ct);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new HttpRequestException($"resolver answered {(int)response.StatusCode} for {key}: {await response.Content.ReadAsStringAsync(ct)}");
        }

        return await response.Content.ReadFromJsonAsync(PeersJsonContext.Default.PeersResponse, ct)
            ?? throw new InvalidDataException($"empty lookup answer for {key}");
    }

    /// <summary>The node names the resolver answers for <paramref name="key"/>, in its order.</summary>
    public async Task<IReadOnlyList<string>> NodesAsync(string key, CancellationToken ct = default) =>
        (await LookupAsync(key, null, ct)).Peers.Select(p => p.Node).ToList();

    /// <summary>
    /// POSTs <paramref name="contentEvent"/> as the CloudEvent a Standalone indexer sends (the same envelope Dapr delivers);
    /// returns the subscriber status (<c>SUCCESS</c>, <c>RETRY</c>, <c>DROP</c>).
    /// </summary>
    public async Task<string> PostEventAsync(ContentEvent contentEvent, CancellationToken ct = default)
    {
        using var content = new ByteArrayContent(CloudEvent.Wrap(contentEvent, ContentTopics.DefaultPubSub, ContentTopics.DefaultTopic));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/cloudevents+json");
        using var response = await Http.PostAsync(new Uri(BaseUri, ContentTopics.SubscriptionRoute), content, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"resolver answered {(int)response.StatusCode} to the event: {body}");
        }

        using var json = System.Text.Json.JsonDocument.Parse(body);
        return json.RootElement.GetProperty("status").GetString() ?? string.Empty;
    }
}
