using Microsoft.Extensions.Logging;
using Spegel.Core.Events;
using Spegel.Resolver.Observability;

namespace Spegel.Resolver.Events;

/// <summary>Dapr's subscriber response: <c>{"status":"SUCCESS"|"RETRY"|"DROP"}</c>.</summary>
public sealed record SubscriptionResponse(string Status)
{
    public static readonly SubscriptionResponse Success = new("SUCCESS");
    public static readonly SubscriptionResponse Retry = new("RETRY");
    public static readonly SubscriptionResponse Drop = new("DROP");
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[System.Text.Json.Serialization.JsonSerializable(typeof(SubscriptionResponse))]
public sealed partial class SubscriptionJsonContext : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>
/// The subscription route's handler: the event body (a CloudEvent already unwrapped by <c>UseCloudEvents</c>) in,
/// Dapr's status out. Malformed or unknown events are dropped with a log line (a retry cannot fix them);
/// lost compare-and-swap races and store failures ask for redelivery.
/// </summary>
public sealed class ContentEventReceiver(ContentEventDispatcher dispatcher, EventObserver observer, ILogger<ContentEventReceiver> logger)
{
    public const string CloudEventIdHeader = "Cloudevent.id";

    public async Task<IResult> ReceiveAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var id = request.Headers[CloudEventIdHeader].ToString();
        DispatchResult result;
        try
        {
            result = await dispatcher.DispatchAsync(request.Body, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            ResolverLog.EventFailed(logger, ex, id);
            observer.Failed();
            return Respond(SubscriptionResponse.Retry);
        }

        await observer.DispatchedAsync(result);

        if (result.Dropped)
        {
            var droppedKind = Kind(result.Event);
            ResolverLog.EventDropped(logger, result.DropReason!, droppedKind, result.Event?.Node, id);
            return Respond(SubscriptionResponse.Drop);
        }

        var e = result.Event!;
        var kind = Kind(e);
        if (result.Outcome == EventOutcome.Contended)
        {
            ResolverLog.EventContended(logger, kind, e.Node, e.Epoch, e.Sequence, id);
            return Respond(SubscriptionResponse.Retry);
        }

        ResolverLog.EventApplied(logger, kind, e.Node, e.Epoch, e.Sequence, result.Outcome == EventOutcome.Applied);
        return Respond(SubscriptionResponse.Success);
    }

    private static IResult Respond(SubscriptionResponse response) =>
        Results.Json(response, SubscriptionJsonContext.Default.SubscriptionResponse);

    private static string? Kind(ContentEvent? e) => e switch
    {
        ContentAdvertised => ContentAdvertised.Kind,
        ContentWithdrawn => ContentWithdrawn.Kind,
        NodeSnapshot => NodeSnapshot.Kind,
        NodeHeartbeat => NodeHeartbeat.Kind,
        _ => null,
    };
}
