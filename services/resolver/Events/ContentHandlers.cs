using Mediator;
using Microsoft.Extensions.Logging;
using Spegel.Resolver.State;

namespace Spegel.Resolver.Events;

public sealed class AdvertiseContentHandler(PeerMap map, ILogger<AdvertiseContentHandler> logger) : ICommandHandler<AdvertiseContent, EventOutcome>
{
    public async ValueTask<EventOutcome> Handle(AdvertiseContent command, CancellationToken cancellationToken)
    {
        var touch = await NodeTouch.TouchAsync(map, command.Node, logger);
        if (touch.Outcome == UpdateOutcome.Contended || touch.Superseded)
        {
            return touch.Outcome.ToEventOutcome();
        }

        return (await map.AdvertiseAsync(touch.Node, command.Digests, command.Tags)).ToEventOutcome();
    }
}

public sealed class WithdrawContentHandler(PeerMap map, ILogger<WithdrawContentHandler> logger) : ICommandHandler<WithdrawContent, EventOutcome>
{
    public async ValueTask<EventOutcome> Handle(WithdrawContent command, CancellationToken cancellationToken)
    {
        var touch = await NodeTouch.TouchAsync(map, command.Node, logger);
        if (touch.Outcome == UpdateOutcome.Contended || touch.Superseded)
        {
            return touch.Outcome.ToEventOutcome();
        }

        return (await map.WithdrawAsync(touch.Node, command.Digests, command.TagKeys)).ToEventOutcome();
    }
}

public sealed class ApplySnapshotPartHandler(PeerMap map, TimeProvider time, ILogger<ApplySnapshotPartHandler> logger)
    : ICommandHandler<ApplySnapshotPart, EventOutcome>
{
    public async ValueTask<EventOutcome> Handle(ApplySnapshotPart command, CancellationToken cancellationToken)
    {
        var touch = await NodeTouch.TouchAsync(map, command.Node, logger);
        if (touch.Outcome == UpdateOutcome.Contended || touch.Superseded)
        {
            return touch.Outcome.ToEventOutcome();
        }

        // The part's content first, then its count: when the last part completes the snapshot, everything it states
        // is already in the map, so raising the node's floor never hides an entry the snapshot re-confirmed.
        var content = await map.AdvertiseAsync(touch.Node, command.Digests, command.Tags);
        if (content == UpdateOutcome.Contended)
        {
            return EventOutcome.Contended;
        }

        var part = await map.RecordSnapshotPartAsync(touch.Node, command.SnapshotId, command.Part, command.PartCount);
        if (part.Completed)
        {
            var started = time.GetTimestamp();
            try
            {
                var withdrawn = await map.RemoveSupersededAsync(command.Node.Name, part.Floor, cancellationToken);
                var elapsedMs = time.GetElapsedTime(started).TotalMilliseconds;
                ResolverLog.SnapshotCompleted(logger, command.Node.Name, part.Floor.Epoch, command.SnapshotId, command.PartCount, withdrawn, elapsedMs);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Answers already leave superseded entries out (the floor is written); only storage cleanup is late.
                ResolverLog.SnapshotCleanupFailed(logger, ex, command.Node.Name, part.Floor.Epoch, command.SnapshotId);
            }
        }

        return part.Outcome == UpdateOutcome.Contended ? EventOutcome.Contended
            : content == UpdateOutcome.Committed || part.Outcome == UpdateOutcome.Committed ? EventOutcome.Applied
            : EventOutcome.Unchanged;
    }
}

public sealed class RecordHeartbeatHandler(PeerMap map, ILogger<RecordHeartbeatHandler> logger) : ICommandHandler<RecordHeartbeat, EventOutcome>
{
    public async ValueTask<EventOutcome> Handle(RecordHeartbeat command, CancellationToken cancellationToken) =>
        (await NodeTouch.TouchAsync(map, command.Node, logger, command.Interval)).Outcome.ToEventOutcome();
}

/// <summary>
/// Touches the node's record and says so when its address moved. Only a newer stamp can move it (the map ignores
/// older and equal ones); a pod restart legitimately brings a new address, so a newer one is applied, and logged:
/// a live node's address changing is what a forged event would look like.
/// </summary>
internal static partial class NodeTouch
{
    public static async Task<TouchResult> TouchAsync(PeerMap map, NodeFacts node, ILogger logger, TimeSpan? heartbeatInterval = null)
    {
        var touch = await map.TouchAsync(node, heartbeatInterval);
        if (touch.ReplacedAddress is { } previous)
        {
            if (touch.ReplacedWhileLive)
            {
                LogLiveAddressChanged(logger, node.Name, previous, node.Address, node.Stamp.Epoch, node.Stamp.Sequence);
            }
            else
            {
                LogAddressChanged(logger, node.Name, previous, node.Address, node.Stamp.Epoch, node.Stamp.Sequence);
            }
        }

        return touch;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "node address changed while the node was live {node} {previous} {address} {epoch} {seq}")]
    private static partial void LogLiveAddressChanged(ILogger logger, string node, string previous, string address, long epoch, long seq);

    [LoggerMessage(Level = LogLevel.Information, Message = "node address changed {node} {previous} {address} {epoch} {seq}")]
    private static partial void LogAddressChanged(ILogger logger, string node, string previous, string address, long epoch, long seq);
}

internal static class UpdateOutcomeExtensions
{
    public static EventOutcome ToEventOutcome(this UpdateOutcome outcome) => outcome switch
    {
        UpdateOutcome.Committed => EventOutcome.Applied,
        UpdateOutcome.Contended => EventOutcome.Contended,
        _ => EventOutcome.Unchanged,
    };
}
