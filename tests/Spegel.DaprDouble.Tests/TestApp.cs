using System.Collections.Concurrent;
using System.Net;
using Dapr.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Spegel.DaprDouble.Tests;

/// <summary>A request the test app received.</summary>
internal sealed record ReceivedRequest(string Method, string Path, string Query, string? ContentType, IReadOnlyDictionary<string, string> Headers, byte[] Body);

/// <summary>A tiny app on a free loopback port: what sits next to a sidecar in these tests.</summary>
internal sealed class TestApp : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestApp(WebApplication app, ConcurrentQueue<ReceivedRequest> received)
    {
        _app = app;
        Received = received;
        Url = app.Urls.Single();
    }

    public string Url { get; }

    /// <summary>Every request, in arrival order, except <c>GET /dapr/subscribe</c>.</summary>
    public ConcurrentQueue<ReceivedRequest> Received { get; }

    /// <summary>
    /// Starts an app. <paramref name="map"/> maps its endpoints; <paramref name="services"/> and
    /// <paramref name="middleware"/> let a test add the Dapr.AspNetCore pieces.
    /// </summary>
    public static async Task<TestApp> StartAsync(
        Action<WebApplication> map,
        Action<IServiceCollection>? services = null,
        Action<WebApplication>? middleware = null,
        int port = 0)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        builder.Services.AddRouting();
        services?.Invoke(builder.Services);
        var app = builder.Build();
        var received = new ConcurrentQueue<ReceivedRequest>();
        app.Use(async (context, next) =>
        {
            if (!context.Request.Path.StartsWithSegments("/dapr"))
            {
                // Buffer so that both the recorder and the endpoint can read the body.
                context.Request.EnableBuffering();
                using var copy = new MemoryStream();
                await context.Request.Body.CopyToAsync(copy);
                context.Request.Body.Position = 0;
                received.Enqueue(new ReceivedRequest(
                    context.Request.Method,
                    context.Request.Path.ToUriComponent(),
                    context.Request.QueryString.ToUriComponent(),
                    context.Request.ContentType,
                    context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()),
                    copy.ToArray()));
            }

            await next(context);
        });
        middleware?.Invoke(app);
        app.UseRouting();
        map(app);
        await app.StartAsync();
        return new TestApp(app, received);
    }

    /// <summary>An app that subscribes to the given topics on <c>pubsub</c>, each at route <c>/events/&lt;topic&gt;</c>, and answers with <paramref name="answer"/>.</summary>
    public static Task<TestApp> SubscriberAsync(Func<HttpContext, Task> answer, params string[] topics) =>
        StartAsync(app =>
        {
            app.MapGet("/dapr/subscribe", () => Results.Json(
                topics.Select(t => new Dictionary<string, string> { ["pubsubname"] = "pubsub", ["topic"] = t, ["route"] = $"/events/{t}" })));
            app.MapPost("/events/{topic}", answer);
        });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Shared helpers.</summary>
internal static class Harness
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    public static DaprClient Client(SidecarDouble sidecar, string? apiToken = null)
    {
        var builder = new DaprClientBuilder()
            .UseGrpcEndpoint(sidecar.GrpcEndpoint)
            .UseHttpEndpoint(sidecar.HttpEndpoint);
        if (apiToken is not null)
        {
            builder.UseDaprApiToken(apiToken);
        }

        return builder.Build();
    }
}
