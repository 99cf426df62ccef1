using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Mediator;
using Microsoft.Extensions.Options;
using Spegel.Core.Events;

namespace Spegel.Resolver.Events;

/// <summary>The result of one delivery: the outcome, or why the event was dropped.</summary>
public sealed record DispatchResult(EventOutcome? Outcome, string? DropReason, ContentEvent? Event)
{
    public bool Dropped => DropReason is not null;
}

/// <summary>Parses, checks and hands a content event to its handler through the mediator.</summary>
public sealed class ContentEventDispatcher(ISender sender, IOptions<ResolverOptions> options)
{
    private readonly NodeAddressPolicy addresses = NodeAddressPolicy.From(options.Value.PeerNetworks);

    // The contract's context, tolerating a "kind" that is not the first property (other publishers, hand-written events).
    private static readonly JsonTypeInfo<ContentEvent> EventTypeInfo = (JsonTypeInfo<ContentEvent>)new JsonSerializerOptions(ContentEventJsonContext.Default.Options)
    {
        AllowOutOfOrderMetadataProperties = true,
    }.GetTypeInfo(typeof(ContentEvent));

    public async Task<DispatchResult> DispatchAsync(Stream body, CancellationToken cancellationToken)
    {
        ContentEvent? contentEvent;
        try
        {
            contentEvent = await JsonSerializer.DeserializeAsync(body, EventTypeInfo, cancellationToken);
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException)
        {
            // Unknown or missing "kind", missing required members, not JSON at all.
            return new DispatchResult(null, "unreadable event: " + ex.Message, null);
        }

        return contentEvent is null
            ? new DispatchResult(null, "empty event", null)
            : await DispatchAsync(contentEvent, cancellationToken);
    }

    public async Task<DispatchResult> DispatchAsync(ContentEvent contentEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(contentEvent);
        if (!ContentEventTranslator.TryTranslate(contentEvent, addresses, out var command, out var error))
        {
            return new DispatchResult(null, error, contentEvent);
        }

        return new DispatchResult(await sender.Send(command, cancellationToken), null, contentEvent);
    }
}
