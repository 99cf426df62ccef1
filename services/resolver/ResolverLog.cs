using Microsoft.Extensions.Logging;

namespace Spegel.Resolver;

internal static partial class ResolverLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "content event dropped {reason} {kind} {node} {id}")]
    public static partial void EventDropped(ILogger logger, string reason, string? kind, string? node, string? id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "content event retry requested, updates contended {kind} {node} {epoch} {seq} {id}")]
    public static partial void EventContended(ILogger logger, string? kind, string node, long epoch, long seq, string? id);

    [LoggerMessage(Level = LogLevel.Error, Message = "content event failed, retry requested {id}")]
    public static partial void EventFailed(ILogger logger, Exception exception, string? id);

    [LoggerMessage(Level = LogLevel.Debug, Message = "content event {kind} {node} {epoch} {seq} {changed}")]
    public static partial void EventApplied(ILogger logger, string? kind, string node, long epoch, long seq, bool changed);

    [LoggerMessage(Level = LogLevel.Information, Message = "snapshot completed {node} {epoch} {snapshot} {parts} {withdrawn} {elapsedMs}")]
    public static partial void SnapshotCompleted(ILogger logger, string node, long epoch, long snapshot, int parts, int withdrawn, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "snapshot cleanup failed, superseded entries stay hidden until the next snapshot {node} {epoch} {snapshot}")]
    public static partial void SnapshotCleanupFailed(ILogger logger, Exception exception, string node, long epoch, long snapshot);
}
