using Spegel.Core.Events;
using Spegel.Resolver.Events;

namespace Spegel.Resolver.Observability;

/// <summary>
/// What the subscription route reports after each delivery: the event counter by kind and outcome, and the node
/// in the members record (so the cluster page can list it). A members write that fails never fails the event.
/// </summary>
public sealed partial class EventObserver(ResolverMetrics metrics, ClusterMembers members, ILogger<EventObserver> logger)
{
    public const string Applied = "applied";
    public const string Unchanged = "unchanged";
    public const string Retried = "retried";
    public const string Dropped = "dropped";

    public Task DispatchedAsync(DispatchResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var kind = Kind(result.Event);
        if (result.Dropped)
        {
            metrics.Event(kind, Dropped);
            return Task.CompletedTask;
        }

        metrics.Event(kind, result.Outcome switch
        {
            EventOutcome.Applied => Applied,
            EventOutcome.Contended => Retried,
            _ => Unchanged,
        });
        if (result.Event is { } e)
        {
            // Not awaited: the members record serves the page only, and the event's answer must not wait on it.
            _ = ObserveAsync(e.Node);
        }

        return Task.CompletedTask;
    }

    private async Task ObserveAsync(string node)
    {
        try
        {
            await members.ObserveAsync(node);
        }
        catch (Exception ex)
        {
            LogMembersFailed(node, ex.Message);
        }
    }

    /// <summary>The event could not be applied (a store failure): Dapr redelivers it.</summary>
    public void Failed() => metrics.Event(null, Retried);

    private static string? Kind(ContentEvent? e) => e switch
    {
        ContentAdvertised => ContentAdvertised.Kind,
        ContentWithdrawn => ContentWithdrawn.Kind,
        NodeSnapshot => NodeSnapshot.Kind,
        NodeHeartbeat => NodeHeartbeat.Kind,
        _ => null,
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "node not added to the members record, retried with its next event {node} {error}")]
    private partial void LogMembersFailed(string node, string error);
}
