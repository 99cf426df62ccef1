using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spegel.Core.Events;

namespace Spegel.Indexer.Tests;

/// <summary>How the fake subscriber answers one delivery: a Dapr status in a 200, or a bare HTTP status.</summary>
public sealed record SubscriberAnswer(int StatusCode, string? Status)
{
    public static readonly SubscriberAnswer Success = new(200, "SUCCESS");
    public static readonly SubscriberAnswer Retry = new(200, "RETRY");
    public static readonly SubscriberAnswer Drop = new(200, "DROP");

    public static SubscriberAnswer Http(int statusCode) => new(statusCode, null);
}

/// <summary>One delivery the fake subscriber received: the CloudEvent envelope and what it answered.</summary>
public sealed record Delivery(string Id, string ContentType, JsonElement Envelope, SubscriberAnswer Answer)
{
    /// <summary>The content event in the envelope's <c>data</c>, read with the contract's serializer.</summary>
    public ContentEvent Event => Envelope.GetProperty("data").Deserialize(ContentEventJsonContext.Default.ContentEvent)
        ?? throw new InvalidDataException("the CloudEvent carries no data");
}

/// <summary>
/// A resolver's subscription route and nothing else, on Kestrel at a free loopback port: lists its subscription at
/// <c>GET /dapr/subscribe</c> (so a sidecar double finds it) and answers each delivery from a script (then SUCCESS).
/// The publisher conformance tests point both transports at it.
/// </summary>
public sealed class FakeSubscriber : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<SubscriberAnswer> _script = new();
    private readonly ConcurrentQueue<Delivery> _deliveries = new();
    private int _disposed;

    private FakeSubscriber(WebApplication app)
    {
        _app = app;
    }

    public Uri Address { get; private set; } = null!;

    public IReadOnlyList<Delivery> Deliveries => [.. _deliveries];

    /// <summary>The next deliveries get these answers, in order; after them, SUCCESS.</summary>
    public void Answer(params SubscriberAnswer[] answers)
    {
        foreach (var answer in answers)
        {
            _script.Enqueue(answer);
        }
    }

    public static async Task<FakeSubscriber> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var subscriber = new FakeSubscriber(app);
        app.MapGet("/dapr/subscribe", () => Results.Text(
            $$"""[{"pubsubname":"{{ContentTopics.DefaultPubSub}}","topic":"{{ContentTopics.DefaultTopic}}","route":"{{ContentTopics.SubscriptionRoute}}"}]""",
            "application/json"));
        app.MapPost(ContentTopics.SubscriptionRoute, subscriber.ReceiveAsync);
        await app.StartAsync();
        subscriber.Address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return subscriber;
    }

    /// <summary>Stops listening (the resolver gone); safe to call more than once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task<IResult> ReceiveAsync(HttpRequest request)
    {
        using var envelope = await JsonDocument.ParseAsync(request.Body);
        var answer = _script.TryDequeue(out var scripted) ? scripted : SubscriberAnswer.Success;
        var id = envelope.RootElement.TryGetProperty("id", out var i) ? i.GetString() ?? string.Empty : string.Empty;
        _deliveries.Enqueue(new Delivery(id, request.ContentType ?? string.Empty, envelope.RootElement.Clone(), answer));
        return answer.Status is { } status
            ? Results.Text($$"""{"status":"{{status}}"}""", "application/json", statusCode: answer.StatusCode)
            : Results.StatusCode(answer.StatusCode);
    }
}
