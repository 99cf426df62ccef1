using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapr.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Spegel.DaprDouble.Tests;

/// <summary>Service invocation by app-id, as <c>DaprClient.CreateInvokeHttpClient</c> uses it.</summary>
public sealed class InvokeContractTests
{
    /// <summary>An app that answers 201 with what it saw, and a header.</summary>
    private static Task<TestApp> EchoAppAsync() => TestApp.StartAsync(app => app.Map("/{**rest}", async (HttpContext context) =>
    {
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync();
        context.Response.StatusCode = StatusCodes.Status201Created;
        context.Response.Headers["X-Echo"] = "yes";
        await context.Response.WriteAsync($"{context.Request.Method} {context.Request.Path.ToUriComponent()}{context.Request.QueryString} {body}");
    }));

    [Fact]
    public async Task CreateInvokeHttpClient_ReachesTarget_PathQueryBodyAndStatusPreserved()
    {
        await using var backplane = new DaprBackplane();
        await using var target = await EchoAppAsync();
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = target.Url });
        await using var registry = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "registry" });
        using var http = DaprClient.CreateInvokeHttpClient("resolver", registry.HttpEndpoint);

        using var response = await http.PostAsync(
            "/v1/peers/a%20b?key=docker.io/library/nginx:1.27&x=1",
            new StringContent("hello", Encoding.UTF8, "text/plain"));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("yes", Assert.Single(response.Headers.GetValues("X-Echo")));
        Assert.Equal("POST /v1/peers/a%20b?key=docker.io/library/nginx:1.27&x=1 hello", await response.Content.ReadAsStringAsync());
        var seen = Assert.Single(target.Received);
        Assert.Equal("registry", seen.Headers["dapr-caller-app-id"]);
        Assert.Equal("text/plain; charset=utf-8", seen.ContentType);
    }

    [Theory]
    [InlineData(404)]
    [InlineData(418)]
    [InlineData(503)]
    public async Task Invoke_AppStatus_PassedThrough(int status)
    {
        await using var backplane = new DaprBackplane();
        await using var target = await TestApp.StartAsync(app => app.MapGet("/v1/peers", () => Results.StatusCode(status)));
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = target.Url });
        using var http = DaprClient.CreateInvokeHttpClient("resolver", resolver.HttpEndpoint);

        using var response = await http.GetAsync("/v1/peers");

        Assert.Equal(status, (int)response.StatusCode);
    }

    [Fact]
    public async Task Invoke_DaprAppIdHeader_RoutedToThatApp()
    {
        await using var backplane = new DaprBackplane();
        await using var target = await EchoAppAsync();
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = target.Url });
        await using var registry = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "registry" });
        using var http = new HttpClient { BaseAddress = new Uri(registry.HttpEndpoint) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/peers?key=sha256:aa");
        request.Headers.Add("dapr-app-id", "resolver");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("GET /v1/peers?key=sha256:aa ", await response.Content.ReadAsStringAsync());
        Assert.DoesNotContain("dapr-app-id", Assert.Single(target.Received).Headers.Keys);
    }

    [Fact]
    public async Task Invoke_LargeBodies_StreamedBothWays()
    {
        await using var backplane = new DaprBackplane();
        await using var target = await TestApp.StartAsync(app => app.MapPost("/blob", async (HttpContext context) =>
        {
            // Echo the upload back as it arrives.
            context.Response.ContentType = "application/octet-stream";
            await context.Request.Body.CopyToAsync(context.Response.Body);
        }));
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = target.Url });
        using var http = DaprClient.CreateInvokeHttpClient("resolver", resolver.HttpEndpoint);
        var blob = RandomNumberGenerator.GetBytes(8 * 1024 * 1024);

        using var response = await http.PostAsync("/blob", new ByteArrayContent(blob));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(SHA256.HashData(blob), SHA256.HashData(await response.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task Invoke_UnknownAppId_500LikeDaprd()
    {
        await using var backplane = new DaprBackplane();
        await using var registry = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "registry" });
        using var http = DaprClient.CreateInvokeHttpClient("resolver", registry.HttpEndpoint);

        using var response = await http.GetAsync("/v1/peers");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("ERR_DIRECT_INVOKE", json.RootElement.GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task Invoke_AppUnreachable_500LikeDaprd()
    {
        await using var backplane = new DaprBackplane();
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = $"http://127.0.0.1:{FreePort()}" });
        await using var registry = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "registry" });
        using var http = DaprClient.CreateInvokeHttpClient("resolver", registry.HttpEndpoint);

        using var response = await http.GetAsync("/v1/peers");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("ERR_DIRECT_INVOKE", json.RootElement.GetProperty("errorCode").GetString());
        Assert.StartsWith("fail to invoke, id: resolver", json.RootElement.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Invoke_TargetHasAppApiToken_TargetSidecarSendsIt()
    {
        await using var backplane = new DaprBackplane();
        await using var target = await EchoAppAsync();
        await using var resolver = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = target.Url, AppApiToken = "resolver-app-token" });
        await using var registry = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "registry", DaprApiToken = "registry-dapr-token" });
        using var http = DaprClient.CreateInvokeHttpClient("resolver", registry.HttpEndpoint, "registry-dapr-token");

        using var response = await http.GetAsync("/v1/peers");

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("resolver-app-token", Assert.Single(target.Received).Headers["dapr-api-token"]);
    }

    [Fact]
    public async Task Invoke_SeveralInstances_SpreadAcrossThem()
    {
        await using var backplane = new DaprBackplane();
        await using var one = await EchoAppAsync();
        await using var two = await EchoAppAsync();
        await using var sidecarOne = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = one.Url });
        await using var sidecarTwo = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", AppUrl = two.Url });
        using var http = DaprClient.CreateInvokeHttpClient("resolver", sidecarOne.HttpEndpoint);

        for (var i = 0; i < 4; i++)
        {
            using var response = await http.GetAsync("/v1/peers");
            response.EnsureSuccessStatusCode();
        }

        Assert.Equal(2, one.Received.Count);
        Assert.Equal(2, two.Received.Count);
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
