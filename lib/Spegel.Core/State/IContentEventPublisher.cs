using Spegel.Core.Events;

namespace Spegel.Core.State;

/// <summary>
/// Sends a <see cref="ContentEvent"/> to the resolvers: through Dapr pub/sub in a cluster, or straight to the
/// resolver's subscription route in Standalone mode. The payload is always the polymorphic JSON of
/// <see cref="ContentEventJsonContext"/> (with its <c>kind</c> discriminator) wrapped in a CloudEvent.
/// </summary>
public interface IContentEventPublisher
{
    /// <summary>Completes when the transport accepted the event; throws when it could not.</summary>
    Task PublishAsync(ContentEvent contentEvent, CancellationToken cancellationToken = default);
}
