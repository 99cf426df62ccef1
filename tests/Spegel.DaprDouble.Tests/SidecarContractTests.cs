using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Dapr;
using Dapr.Client;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Spegel.DaprDouble.Tests;

/// <summary>API tokens, metadata, health, unknown methods and the sidecar's lifetime.</summary>
public sealed class SidecarContractTests
{
    [Fact]
    public async Task DaprApiToken_GrpcCallWithoutToken_Unauthenticated()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", DaprApiToken = "secret" });
        using var anonymous = Harness.Client(sidecar);
        using var wrong = Harness.Client(sidecar, "not-the-secret");
        using var authorised = Harness.Client(sidecar, "secret");

        var missing = await Assert.ThrowsAsync<DaprException>(() => anonymous.SaveStateAsync("statestore", "k", 1));
        var mismatch = await Assert.ThrowsAsync<DaprException>(() => wrong.GetStateAsync<int>("statestore", "k"));
        await authorised.SaveStateAsync("statestore", "k", 1);

        Assert.Equal(StatusCode.Unauthenticated, Assert.IsType<RpcException>(missing.InnerException).StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, Assert.IsType<RpcException>(mismatch.InnerException).StatusCode);
        Assert.Equal(1, await authorised.GetStateAsync<int>("statestore", "k"));
    }

    [Fact]
    public async Task DaprApiToken_HttpCallWithoutToken_401ButHealthIsOpen()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", DaprApiToken = "secret" });
        using var http = new HttpClient { BaseAddress = new Uri(sidecar.HttpEndpoint) };
        using var withToken = new HttpRequestMessage(HttpMethod.Get, "/v1.0/metadata");
        withToken.Headers.Add("dapr-api-token", "secret");

        using var denied = await http.GetAsync("/v1.0/metadata");
        using var invokeDenied = await http.GetAsync("/v1.0/invoke/x/method/y");
        using var health = await http.GetAsync("/v1.0/healthz");
        using var allowed = await http.SendAsync(withToken);

        Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, invokeDenied.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task SetMetadata_FromTheApp_VisibleOnBothMetadataApis()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "registry" });
        using var client = Harness.Client(sidecar);
        using var http = new HttpClient { BaseAddress = new Uri(sidecar.HttpEndpoint) };

        await client.SetMetadataAsync("node", "node-a");
        using var put = await http.PutAsync("/v1.0/metadata/address", new StringContent("http://10.0.0.1:5000"));
        var grpc = await client.GetMetadataAsync();
        using var json = JsonDocument.Parse(await http.GetStringAsync("/v1.0/metadata"));

        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        Assert.Equal("registry", grpc.Id);
        Assert.Equal("node-a", grpc.Extended["node"]);
        Assert.Equal("http://10.0.0.1:5000", grpc.Extended["address"]);
        Assert.Contains(grpc.Components, c => c.Name == "statestore" && c.Capabilities.Contains("ETAG"));
        Assert.Equal("registry", json.RootElement.GetProperty("id").GetString());
        Assert.Equal("node-a", json.RootElement.GetProperty("extended").GetProperty("node").GetString());
        Assert.Equal("node-a", sidecar.ExtendedMetadata["node"]);
    }

    [Fact]
    public async Task GetMetadata_AfterDiscovery_ListsTheSubscriptions()
    {
        await using var backplane = new DaprBackplane();
        await using var app = await TestApp.SubscriberAsync(_ => Task.CompletedTask, "images");
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = app.Url });
        await sidecar.WaitForAppAsync(Harness.Deadline);
        using var http = new HttpClient { BaseAddress = new Uri(sidecar.HttpEndpoint) };

        using var json = JsonDocument.Parse(await http.GetStringAsync("/v1.0/metadata"));

        var subscription = Assert.Single(json.RootElement.GetProperty("subscriptions").EnumerateArray());
        Assert.Equal("pubsub", subscription.GetProperty("pubsubname").GetString());
        Assert.Equal("images", subscription.GetProperty("topic").GetString());
        Assert.Equal("/events/images", subscription.GetProperty("rules")[0].GetProperty("path").GetString());
    }

    [Fact]
    public async Task Healthz_AppNotUpYet_500UntilTheAppAnswers()
    {
        await using var backplane = new DaprBackplane();
        var port = InvokeContractTests.FreePort();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = $"http://127.0.0.1:{port}" });
        using var client = Harness.Client(sidecar);
        await client.WaitForSidecarAsync();
        Assert.False(await client.CheckHealthAsync());

        await using var app = await TestApp.StartAsync(a => a.MapGet("/dapr/subscribe", () => Results.NotFound()), port: port);
        await sidecar.WaitForAppAsync(Harness.Deadline);

        Assert.True(await client.CheckHealthAsync());
        Assert.Empty(sidecar.Subscriptions);
    }

    [Fact]
    public async Task AttachAppAsync_AppStartedAfterItsSidecar_SubscriptionsLive()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        Assert.True(await client.CheckHealthAsync());
        await using var app = await TestApp.SubscriberAsync(_ => Task.CompletedTask, "images");

        await sidecar.AttachAppAsync(app.Url, Harness.Deadline);
        await client.PublishEventAsync("pubsub", "images", new { node = "a" });
        await backplane.WaitForIdleAsync(Harness.Deadline);

        Assert.True(sidecar.IsAppReady);
        Assert.Single(app.Received);
        await Assert.ThrowsAsync<InvalidOperationException>(() => sidecar.AttachAppAsync(app.Url, Harness.Deadline));
    }

    [Fact]
    public async Task Healthz_AppUnreachable_NotHealthy()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = $"http://127.0.0.1:{InvokeContractTests.FreePort()}" });
        using var client = Harness.Client(sidecar);

        Assert.False(await client.CheckHealthAsync());
        Assert.True(await client.CheckOutboundHealthAsync());
        await Assert.ThrowsAsync<TimeoutException>(() => sidecar.WaitForAppAsync(TimeSpan.FromMilliseconds(100)));
    }

    [Fact]
    public async Task UnboundGrpcMethod_Unimplemented()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);

        var error = await Assert.ThrowsAsync<DaprException>(() => client.InvokeBindingAsync("binding", "create", new { a = 1 }));

        Assert.Equal(StatusCode.Unimplemented, Assert.IsType<RpcException>(error.InnerException).StatusCode);
    }

    [Fact]
    public async Task DisposeAsync_FreesBothPorts()
    {
        await using var backplane = new DaprBackplane();
        var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        var ports = new[] { sidecar.GrpcPort, sidecar.HttpPort };
        Assert.Contains(sidecar, backplane.Sidecars);

        await sidecar.DisposeAsync();

        Assert.DoesNotContain(sidecar, backplane.Sidecars);
        foreach (var port in ports)
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
        }
    }

    [Fact]
    public async Task Environment_NamesTheEndpointsAndTokens()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", DaprApiToken = "d", AppApiToken = "a" });

        var env = sidecar.Environment;

        Assert.Equal(sidecar.GrpcEndpoint, env["DAPR_GRPC_ENDPOINT"]);
        Assert.Equal(sidecar.HttpEndpoint, env["DAPR_HTTP_ENDPOINT"]);
        Assert.Equal($"http://127.0.0.1:{sidecar.GrpcPort}", sidecar.GrpcEndpoint);
        Assert.Equal("d", env["DAPR_API_TOKEN"]);
        Assert.Equal("a", env["APP_API_TOKEN"]);
    }

    [Theory]
    [InlineData("")]
    [InlineData("bad||prefix")]
    public async Task StartAsync_InvalidOptions_Throws(string keyPrefix)
    {
        await using var backplane = new DaprBackplane();
        var options = new SidecarOptions
        {
            AppId = keyPrefix.Length == 0 ? "" : "resolver",
            StateStores = [new StateStoreComponent("statestore") { KeyPrefix = keyPrefix.Length == 0 ? "appid" : keyPrefix }],
        };

        await Assert.ThrowsAsync<ArgumentException>(() => SidecarDouble.StartAsync(backplane, options));
    }
}
