using System.Text;
using System.Text.Json;
using Dapr;
using Dapr.Client;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Spegel.DaprDouble.Tests;

/// <summary>Publishing through the real DaprClient reaches subscribers the way daprd delivers.</summary>
public sealed class PubSubContractTests
{
    private sealed record ImageAdvertised(string Node, string[] Digests);

    private static Task Ok(HttpContext context) => Task.CompletedTask;

    [Fact]
    public async Task PublishEvent_Subscriber_ReceivesCloudEventWithDaprFields()
    {
        await using var backplane = new DaprBackplane();
        await using var app = await TestApp.SubscriberAsync(Ok, "images");
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = app.Url });
        await using var indexer = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "indexer" });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(indexer);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("node-a", ["sha256:aa"]));
        await backplane.WaitForIdleAsync(Harness.Deadline);

        var request = Assert.Single(app.Received);
        Assert.Equal("/events/images", request.Path);
        Assert.Equal("application/cloudevents+json", request.ContentType);
        using var json = JsonDocument.Parse(request.Body);
        var e = json.RootElement;
        Assert.Equal("1.0", e.GetProperty("specversion").GetString());
        Assert.False(string.IsNullOrEmpty(e.GetProperty("id").GetString()));
        Assert.Equal("indexer", e.GetProperty("source").GetString());
        Assert.Equal("com.dapr.event.sent", e.GetProperty("type").GetString());
        Assert.Equal("application/json", e.GetProperty("datacontenttype").GetString());
        Assert.Equal("images", e.GetProperty("topic").GetString());
        Assert.Equal("pubsub", e.GetProperty("pubsubname").GetString());
        Assert.StartsWith("00-", e.GetProperty("traceid").GetString());
        Assert.Equal("node-a", e.GetProperty("data").GetProperty("node").GetString());
        Assert.Equal("sha256:aa", e.GetProperty("data").GetProperty("digests")[0].GetString());
        Assert.Equal(new DeliveryCounters(0, 1, 0, 0, 0), resolver.Counters);
        Assert.Equal(1, indexer.Counters.Published);
    }

    [Fact]
    public async Task PublishEvent_DaprAspNetCoreSubscriber_HandlerGetsTheData()
    {
        await using var backplane = new DaprBackplane();
        var received = new TaskCompletionSource<ImageAdvertised>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await TestApp.StartAsync(
            map: a =>
            {
                a.MapSubscribeHandler();
                a.MapPost("/images", (ImageAdvertised e) =>
                {
                    received.TrySetResult(e);
                    return Results.Ok();
                }).WithTopic("pubsub", "images");
            },
            middleware: a => a.UseCloudEvents());
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = app.Url });
        await using var indexer = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "indexer" });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(indexer);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("node-b", ["sha256:bb"]));

        var e = await received.Task.WaitAsync(Harness.Deadline);
        Assert.Equal("node-b", e.Node);
        Assert.Equal(["sha256:bb"], e.Digests);
        var subscription = Assert.Single(resolver.Subscriptions);
        Assert.Equal(("pubsub", "images", "images"), (subscription.PubSubName, subscription.Topic, subscription.Route));
    }

    [Fact]
    public async Task PublishEvent_SubscriberAnswersRetryTwice_RetriedThenDelivered()
    {
        await using var backplane = new DaprBackplane();
        var calls = 0;
        await using var app = await TestApp.SubscriberAsync(
            context => Interlocked.Increment(ref calls) <= 2
                ? context.Response.WriteAsJsonAsync(new { status = "RETRY" })
                : context.Response.WriteAsJsonAsync(new { status = "SUCCESS" }),
            "images");
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = app.Url });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(resolver);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("n", []));
        await backplane.WaitForIdleAsync(Harness.Deadline);

        Assert.Equal(new DeliveryCounters(1, 1, 2, 0, 0), resolver.Counters);
        var ids = app.Received.Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("id").GetString()).ToList();
        Assert.Equal(3, ids.Count);
        Assert.Single(ids.Distinct());
    }

    [Theory]
    [InlineData(200, """{"status":"DROP"}""")]
    [InlineData(404, "")]
    public async Task PublishEvent_SubscriberDropsOr404_DroppedWithoutRetry(int status, string body)
    {
        await using var backplane = new DaprBackplane();
        await using var app = await TestApp.SubscriberAsync(
            async context =>
            {
                context.Response.StatusCode = status;
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(body);
            },
            "images");
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = app.Url });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(resolver);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("n", []));
        await backplane.WaitForIdleAsync(Harness.Deadline);

        Assert.Equal(new DeliveryCounters(1, 0, 0, 1, 0), resolver.Counters);
        Assert.Single(app.Received);
    }

    [Theory]
    [InlineData(500, "")]
    [InlineData(200, """{"status":"LATER"}""")]
    public async Task PublishEvent_SubscriberKeepsFailing_RetriedThenExhausted(int status, string body)
    {
        await using var backplane = new DaprBackplane();
        await using var app = await TestApp.SubscriberAsync(
            async context =>
            {
                context.Response.StatusCode = status;
                await context.Response.WriteAsync(body);
            },
            "images");
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions
        {
            AppId = "resolver",
            AppUrl = app.Url,
            DeliveryRetry = new DeliveryRetryOptions { MaxRetries = 3, InitialDelay = TimeSpan.FromMilliseconds(1) },
        });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(resolver);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("n", []));
        await backplane.WaitForIdleAsync(Harness.Deadline);

        Assert.Equal(new DeliveryCounters(1, 0, 3, 0, 1), resolver.Counters);
        Assert.Equal(4, app.Received.Count);
    }

    [Fact]
    public async Task PublishEvent_RetriesExhaustedWithDeadLetterTopic_GoesToDeadLetterRoute()
    {
        await using var backplane = new DaprBackplane();
        await using var app = await TestApp.StartAsync(a =>
        {
            a.MapGet("/dapr/subscribe", () => Results.Content(
                """[{"pubsubname":"pubsub","topic":"images","route":"/events/images","deadLetterTopic":"poison"},{"pubsubname":"pubsub","topic":"poison","route":"/dead"}]""",
                "application/json"));
            a.MapPost("/events/images", () => Results.StatusCode(503));
            a.MapPost("/dead", () => Results.Ok());
        });
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions
        {
            AppId = "resolver",
            AppUrl = app.Url,
            DeliveryRetry = new DeliveryRetryOptions { MaxRetries = 1, InitialDelay = TimeSpan.FromMilliseconds(1) },
        });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(resolver);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("n", []));
        await backplane.WaitForIdleAsync(Harness.Deadline);

        var dead = Assert.Single(app.Received, r => r.Path == "/dead");
        Assert.Equal("poison", JsonDocument.Parse(dead.Body).RootElement.GetProperty("topic").GetString());
        Assert.Equal(new DeliveryCounters(1, 1, 1, 0, 1), resolver.Counters);
    }

    [Fact]
    public async Task PublishEvent_TwoInstancesOfOneAppId_EachMessageReachesOneInstance()
    {
        await using var backplane = new DaprBackplane();
        await using var appOne = await TestApp.SubscriberAsync(Ok, "images");
        await using var appTwo = await TestApp.SubscriberAsync(Ok, "images");
        await using var one = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = appOne.Url });
        await using var two = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = appTwo.Url });
        await using var indexer = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "indexer" });
        await one.WaitForAppAsync(Harness.Deadline);
        await two.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(indexer);

        for (var i = 0; i < 40; i++)
        {
            await client.PublishEventAsync("pubsub", "images", new ImageAdvertised($"n{i}", []));
        }

        await backplane.WaitForIdleAsync(Harness.Deadline);

        var nodes = appOne.Received.Concat(appTwo.Received)
            .Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("data").GetProperty("node").GetString())
            .ToList();
        Assert.Equal(40, nodes.Count);
        Assert.Equal(40, nodes.Distinct().Count());
        Assert.Equal(40, one.Counters.Delivered + two.Counters.Delivered);
    }

    [Fact]
    public async Task PublishEvent_TwoAppIds_BothGetEveryMessage()
    {
        await using var backplane = new DaprBackplane();
        await using var appA = await TestApp.SubscriberAsync(Ok, "images");
        await using var appB = await TestApp.SubscriberAsync(Ok, "images");
        await using var a = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = appA.Url });
        await using var b = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "auditor", AppUrl = appB.Url });
        await a.WaitForAppAsync(Harness.Deadline);
        await b.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(a);

        for (var i = 0; i < 5; i++)
        {
            await client.PublishEventAsync("pubsub", "images", new ImageAdvertised($"n{i}", []));
        }

        await backplane.WaitForIdleAsync(Harness.Deadline);

        Assert.Equal(5, appA.Received.Count);
        Assert.Equal(5, appB.Received.Count);
        // In order per topic per subscriber.
        Assert.Equal(
            Enumerable.Range(0, 5).Select(i => $"n{i}"),
            appA.Received.Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("data").GetProperty("node").GetString()));
    }

    [Fact]
    public async Task PublishEvent_InstanceStopped_GroupKeepsMessagesForTheNextInstance()
    {
        await using var backplane = new DaprBackplane();
        await using var appOne = await TestApp.SubscriberAsync(Ok, "images");
        var one = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = appOne.Url });
        await one.WaitForAppAsync(Harness.Deadline);
        await one.DisposeAsync();
        await using var indexer = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "indexer" });
        using var client = Harness.Client(indexer);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("while-down", []));
        await Assert.ThrowsAsync<TimeoutException>(() => backplane.WaitForIdleAsync(TimeSpan.FromMilliseconds(50)));
        await using var appTwo = await TestApp.SubscriberAsync(Ok, "images");
        await using var two = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = appTwo.Url });
        await backplane.WaitForIdleAsync(Harness.Deadline);

        Assert.Single(appTwo.Received);
    }

    [Fact]
    public async Task PublishEvent_RoutingRules_FirstMatchingRuleElseDefault()
    {
        await using var backplane = new DaprBackplane();
        await using var app = await TestApp.StartAsync(a =>
        {
            a.MapGet("/dapr/subscribe", () => Results.Content(
                """[{"pubsubName":"pubsub","topic":"images","routes":{"rules":[{"match":"event.type == \"withdrawn\"","path":"/withdrawn"}],"default":"/advertised"}}]""",
                "application/json"));
            a.MapPost("/withdrawn", () => Results.Ok());
            a.MapPost("/advertised", () => Results.Ok());
        });
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = app.Url });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(resolver);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("a", []));
        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("b", []), new Dictionary<string, string> { ["cloudevent.type"] = "withdrawn" });
        await backplane.WaitForIdleAsync(Harness.Deadline);

        Assert.Equal(["/advertised", "/withdrawn"], app.Received.Select(r => r.Path).Order());
    }

    [Fact]
    public async Task BulkPublishEvent_EveryEntryDelivered()
    {
        await using var backplane = new DaprBackplane();
        await using var app = await TestApp.SubscriberAsync(Ok, "images");
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = app.Url });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(resolver);

        var response = await client.BulkPublishEventAsync("pubsub", "images", [new ImageAdvertised("a", []), new ImageAdvertised("b", [])]);
        await backplane.WaitForIdleAsync(Harness.Deadline);

        Assert.Empty(response.FailedEntries);
        Assert.Equal(2, app.Received.Count);
    }

    [Fact]
    public async Task PublishEvent_RawPayloadSubscription_GetsBareData()
    {
        await using var backplane = new DaprBackplane();
        await using var app = await TestApp.StartAsync(a =>
        {
            a.MapGet("/dapr/subscribe", () => Results.Content(
                """[{"pubsubname":"pubsub","topic":"images","route":"/raw","metadata":{"rawPayload":"true"}}]""",
                "application/json"));
            a.MapPost("/raw", () => Results.Ok());
        });
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = app.Url });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(resolver);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("a", []));
        await backplane.WaitForIdleAsync(Harness.Deadline);

        var request = Assert.Single(app.Received);
        Assert.Equal("application/json", request.ContentType);
        Assert.Equal("""{"node":"a","digests":[]}""", Encoding.UTF8.GetString(request.Body));
    }

    [Fact]
    public async Task PublishEvent_AppApiToken_SentToTheSubscriber()
    {
        await using var backplane = new DaprBackplane();
        await using var app = await TestApp.SubscriberAsync(Ok, "images");
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = app.Url, AppApiToken = "app-secret" });
        await resolver.WaitForAppAsync(Harness.Deadline);
        using var client = Harness.Client(resolver);

        await client.PublishEventAsync("pubsub", "images", new ImageAdvertised("a", []));
        await backplane.WaitForIdleAsync(Harness.Deadline);

        Assert.Equal("app-secret", Assert.Single(app.Received).Headers["dapr-api-token"]);
    }

    [Fact]
    public async Task PublishEvent_UnknownPubSub_InvalidArgumentLikeDaprd()
    {
        await using var backplane = new DaprBackplane();
        await using var indexer = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "indexer" });
        using var client = Harness.Client(indexer);

        var error = await Assert.ThrowsAsync<DaprException>(() => client.PublishEventAsync("kafka", "images", new ImageAdvertised("a", [])));

        var rpc = Assert.IsType<RpcException>(error.InnerException);
        Assert.Equal(StatusCode.InvalidArgument, rpc.StatusCode);
        Assert.Equal("pubsub kafka not found", rpc.Status.Detail);
    }
}
