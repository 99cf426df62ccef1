using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Spegel.Core.Events;
using Spegel.Dapr;
using Spegel.TestRig;
using static Spegel.Resolver.Tests.TestEvents;

namespace Spegel.Resolver.Tests;

public sealed class ResolverEndpointTests
{
    private const string Tag = "docker.io/library/nginx:1.27";

    [Fact]
    public async Task PostCloudEvent_Advertised_AnswersSuccessAndLookupListsNode()
    {
        await using var host = await ResolverTestHost.StartAsync();
        var index = Digest("index");
        var layer = Digest("layer");

        using var response = await host.Client.SendAsync(CloudEvent(Advertised("node-a", 1, [index, layer], [new TagBinding(Tag, index)])));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("SUCCESS", await StatusOf(response));
        var answer = await host.Client.GetFromJsonAsync<JsonElement>($"/v1/peers?key={layer}");
        Assert.Equal(layer, answer.GetProperty("key").GetString());
        var peer = Assert.Single(answer.GetProperty("peers").EnumerateArray());
        Assert.Equal("node-a", peer.GetProperty("node").GetString());
        Assert.Equal(Address("node-a"), peer.GetProperty("url").GetString());
        var tag = await host.Client.GetFromJsonAsync<JsonElement>($"/v1/peers?key={Uri.EscapeDataString(Tag)}");
        Assert.Equal(index, tag.GetProperty("digest").GetString());
        Assert.Single(tag.GetProperty("peers").EnumerateArray());
    }

    [Fact]
    public async Task GetPeers_Exclude_LeavesNodeOut()
    {
        await using var host = await ResolverTestHost.StartAsync();
        var layer = Digest("layer");
        (await host.Client.SendAsync(CloudEvent(Advertised("node-a", 1, [layer])))).Dispose();
        (await host.Client.SendAsync(CloudEvent(Advertised("node-b", 1, [layer])))).Dispose();

        var answer = await host.Client.GetFromJsonAsync<JsonElement>($"/v1/peers?key={layer}&exclude=node-a");

        Assert.Equal(["node-b"], answer.GetProperty("peers").EnumerateArray().Select(p => p.GetProperty("node").GetString()));
    }

    [Fact]
    public async Task GetDaprSubscribe_Default_ListsContentRouteOnConfiguredTopic()
    {
        await using var host = await ResolverTestHost.StartAsync(new Dictionary<string, string?> { ["Spegel:Resolver:Topic"] = "content-test" });

        var subscriptions = await host.Client.GetFromJsonAsync<JsonElement>("/dapr/subscribe");

        var subscription = Assert.Single(subscriptions.EnumerateArray());
        Assert.Equal(ContentTopics.DefaultPubSub, subscription.GetProperty("pubsubName").GetString());
        Assert.Equal("content-test", subscription.GetProperty("topic").GetString());
        Assert.Equal(ContentTopics.SubscriptionRoute.TrimStart('/'), subscription.GetProperty("route").GetString()!.TrimStart('/'));
    }

    [Theory]
    [InlineData("{\"specversion\":\"1.0\",\"id\":\"bad-1\",\"source\":\"test\",\"type\":\"x\",\"datacontenttype\":\"application/json\",\"data\":{\"kind\":\"exploded\"}}")]
    [InlineData("{\"specversion\":\"1.0\",\"id\":\"bad-1\",\"source\":\"test\",\"type\":\"x\",\"datacontenttype\":\"application/json\",\"data\":{\"kind\":\"advertised\",\"version\":9,\"node\":\"a\",\"address\":\"http://a\",\"epoch\":1,\"sequence\":1,\"timestamp\":\"2025-01-01T00:00:00Z\"}}")]
    [InlineData("{\"specversion\":\"1.0\",\"id\":\"bad-1\",\"source\":\"test\",\"type\":\"x\",\"datacontenttype\":\"application/json\",\"data\":{\"kind\":\"advertised\",\"version\":1,\"node\":\"a\",\"address\":\"http://a\",\"epoch\":1,\"sequence\":1,\"timestamp\":\"2025-01-01T00:00:00Z\",\"digests\":[\"sha256:nope\"]}}")]
    public async Task PostCloudEvent_Malformed_AnswersDropAndLogs(string envelope)
    {
        await using var host = await ResolverTestHost.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, ContentTopics.SubscriptionRoute)
        {
            Content = new StringContent(envelope, Encoding.UTF8, "application/cloudevents+json"),
        };

        using var response = await host.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("DROP", await StatusOf(response));
        var line = Assert.Single(host.Logs.Lines, l => l.Message.StartsWith("content event dropped", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, line.Level);
        Assert.Contains("bad-1", line.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("?key=")]
    [InlineData("?key=sha256:123")]
    [InlineData("?key=NOT%20A%20REF")]
    public async Task GetPeers_InvalidKey_Answers400WithReason(string query)
    {
        await using var host = await ResolverTestHost.StartAsync();

        using var response = await host.Client.GetAsync("/v1/peers" + query);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains("registry/repository:tag", body.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Startup_InvalidOptions_ReportsEveryError()
    {
        await using var app = ResolverTestHost.Build(new Dictionary<string, string?>
        {
            ["Spegel:Resolver:NodeTimeout"] = "-00:00:01",
            ["Spegel:Resolver:Topic"] = " ",
            ["Spegel:Resolver:IndexChunks"] = "0",
        });

        var error = Assert.Throws<OptionsValidationException>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Equal(3, error.Failures.Count());
        Assert.Contains(error.Failures, f => f.Contains("Spegel:Resolver:NodeTimeout", StringComparison.Ordinal));
    }

    /// <summary>
    /// Dapr mode end to end: an indexer publishes through its sidecar, the resolver's sidecar discovers the
    /// programmatic subscription and delivers the CloudEvent, the resolver keeps the map in the Dapr state store.
    /// </summary>
    [Fact]
    public async Task DaprTransport_PublishedAdvertisement_ReachesStateStoreAndLookup()
    {
        await using var dapr = await DaprSidecarFixture.StartAsync();
        await using var host = await ResolverTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Spegel:Transport"] = "Dapr",
            ["DAPR_GRPC_ENDPOINT"] = dapr.Sidecar.GrpcEndpoint,
            ["DAPR_HTTP_ENDPOINT"] = dapr.Sidecar.HttpEndpoint,
        });
        await dapr.Sidecar.AttachAppAsync(host.Address.ToString().TrimEnd('/'), TimeSpan.FromSeconds(10));
        await Poll.WaitUntilAsync(() => dapr.Sidecar.IsAppReady, TimeSpan.FromSeconds(10), "the resolver's subscription to be discovered");
        var indexer = await DaprSidecarFixture.StartSidecarAsync(dapr.Backplane, "indexer");
        var publisher = new DaprContentEventPublisher(dapr.CreateClient(indexer), ContentTopics.DefaultPubSub, ContentTopics.DefaultTopic);
        var layer = Digest("layer");

        await publisher.PublishAsync(Advertised("node-a", 1, [layer], [new TagBinding(Tag, layer)]));
        await dapr.Backplane.WaitForIdleAsync(TimeSpan.FromSeconds(10));

        var answer = await host.Client.GetFromJsonAsync<JsonElement>($"/v1/peers?key={layer}");
        Assert.Equal("node-a", Assert.Single(answer.GetProperty("peers").EnumerateArray()).GetProperty("node").GetString());
        Assert.Contains($"{ContentTopics.DefaultStateStore}||digest|{layer}", dapr.Backplane.GetStoredKeys(ContentTopics.DefaultStateStore));
        Assert.Equal(1, dapr.Backplane.Counters.Delivered);
    }

    [Fact]
    public void Serialize_ContentEvent_WritesKindDiscriminatorFirst()
    {
        var json = Encoding.UTF8.GetString(DaprContentEventPublisher.Serialize(Heartbeat("node-a", 1)));

        Assert.StartsWith("{\"kind\":\"heartbeat\"", json, StringComparison.Ordinal);
    }

    private static HttpRequestMessage CloudEvent(ContentEvent contentEvent)
    {
        // What a Standalone indexer POSTs: the CloudEvent envelope a sidecar would have built.
        var data = Encoding.UTF8.GetString(DaprContentEventPublisher.Serialize(contentEvent));
        var envelope = $$"""{"specversion":"1.0","id":"{{Guid.NewGuid()}}","source":"indexer","type":"com.dapr.event.sent","topic":"content","pubsubname":"spegel-pubsub","datacontenttype":"application/json","data":{{data}}}""";
        return new HttpRequestMessage(HttpMethod.Post, ContentTopics.SubscriptionRoute)
        {
            Content = new StringContent(envelope, Encoding.UTF8, "application/cloudevents+json"),
        };
    }

    private static async Task<string?> StatusOf(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString();
}
