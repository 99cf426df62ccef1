using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Spegel.Core;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Hosting;

namespace Spegel.Indexer;

/// <summary>
/// Stamps the node's events (epoch, sequence), splits them below the message size limit and publishes them in
/// order, retrying one event until the transport takes it so that nothing is lost or reordered while the
/// resolver or the sidecar is away. Heartbeats bypass the queue: a late heartbeat is worth nothing.
/// </summary>
public sealed partial class EventOutbox : BackgroundService
{
    // Envelope, property names and the other fields of an event fit in this; items are counted one by one.
    private const int FixedOverheadBytes = 2048;

    private readonly IContentEventPublisher publisher;
    private readonly TimeProvider time;
    private readonly ILogger<EventOutbox> logger;
    private readonly IndexerOptions options;
    private readonly NodeOptions node;
    private readonly Channel<ContentEvent> queue = Channel.CreateUnbounded<ContentEvent>(new UnboundedChannelOptions { SingleReader = true });
    private long sequence;
    private long pending;

    public EventOutbox(IContentEventPublisher publisher, TimeProvider time, IOptions<IndexerOptions> options, IOptions<NodeOptions> node, ILogger<EventOutbox> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(node);
        this.publisher = publisher;
        this.time = time;
        this.logger = logger;
        this.options = options.Value;
        this.node = node.Value;
        Epoch = time.GetUtcNow().ToUnixTimeMilliseconds();
    }

    /// <summary>This run's epoch: its start time, so a restarted indexer's events sort after the old run's.</summary>
    public long Epoch { get; }

    /// <summary>Events queued and not yet accepted by the transport.</summary>
    public long Pending => Interlocked.Read(ref pending);

    /// <summary>Events accepted by the transport since start.</summary>
    public long Published { get; private set; }

    private string Address => node.Address ?? string.Empty;

    public void Advertise(IReadOnlyList<TagBinding> tags, IReadOnlyList<Digest> digests)
    {
        foreach (var (tagPart, digestPart) in Split(tags, TagSize, digests.Select(d => d.ToString()).ToList()))
        {
            Enqueue(new ContentAdvertised { Node = node.Name, Address = Address, Epoch = Epoch, Sequence = NextSequence(), Timestamp = time.GetUtcNow(), Tags = tagPart, Digests = digestPart });
        }
    }

    public void Withdraw(IReadOnlyList<string> tags, IReadOnlyList<Digest> digests)
    {
        foreach (var (tagPart, digestPart) in Split(tags, t => t.Length + 3, digests.Select(d => d.ToString()).ToList()))
        {
            Enqueue(new ContentWithdrawn { Node = node.Name, Address = Address, Epoch = Epoch, Sequence = NextSequence(), Timestamp = time.GetUtcNow(), Tags = tagPart, Digests = digestPart });
        }
    }

    /// <summary>Everything the node holds, in as many parts as the size limit needs; all parts share the first part's sequence as id.</summary>
    public void Snapshot(IReadOnlyList<TagBinding> tags, IReadOnlyList<Digest> digests)
    {
        var parts = Split(tags, TagSize, digests.Select(d => d.ToString()).ToList()).ToList();
        if (parts.Count == 0)
        {
            parts.Add(([], []));
        }

        long? snapshotId = null;
        for (var i = 0; i < parts.Count; i++)
        {
            var seq = NextSequence();
            snapshotId ??= seq;
            Enqueue(new NodeSnapshot
            {
                Node = node.Name,
                Address = Address,
                Epoch = Epoch,
                Sequence = seq,
                Timestamp = time.GetUtcNow(),
                SnapshotId = snapshotId.Value,
                Part = i + 1,
                PartCount = parts.Count,
                Tags = parts[i].Tags,
                Digests = parts[i].Digests,
            });
        }
    }

    /// <summary>Sends a heartbeat now, outside the queue; false when the transport did not take it.</summary>
    public async Task<bool> HeartbeatAsync(CancellationToken cancellationToken)
    {
        var heartbeat = new NodeHeartbeat { Node = node.Name, Address = Address, Epoch = Epoch, Sequence = NextSequence(), Timestamp = time.GetUtcNow(), Interval = options.HeartbeatInterval };
        try
        {
            await publisher.PublishAsync(heartbeat, cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogHeartbeatFailed(ex.Message);
            return false;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var contentEvent in queue.Reader.ReadAllAsync(stoppingToken))
        {
            var backoff = TimeSpan.FromMilliseconds(100);
            var attempt = 0;
            while (true)
            {
                attempt++;
                try
                {
                    await publisher.PublishAsync(contentEvent, stoppingToken);
                    break;
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    if (attempt == 1 || attempt % 20 == 0)
                    {
                        LogPublishFailed(contentEvent.GetType().Name, contentEvent.Sequence, attempt, ex.Message);
                    }

                    await Task.Delay(backoff, time, stoppingToken);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, options.MaxBackoff.Ticks));
                }
            }

            Interlocked.Decrement(ref pending);
            Published++;
        }
    }

    private static int TagSize(TagBinding tag) => tag.Reference.Length + tag.Digest.Length + 32;

    private long NextSequence() => Interlocked.Increment(ref sequence);

    private void Enqueue(ContentEvent contentEvent)
    {
        Interlocked.Increment(ref pending);
        queue.Writer.TryWrite(contentEvent);
    }

    /// <summary>Splits tags and digests into parts whose JSON stays under the message limit; nothing when both are empty.</summary>
    private IEnumerable<(IReadOnlyList<T> Tags, IReadOnlyList<string> Digests)> Split<T>(IReadOnlyList<T> tags, Func<T, int> tagSize, IReadOnlyList<string> digests)
    {
        var budget = options.MaxMessageBytes - FixedOverheadBytes;
        var tagPart = new List<T>();
        var digestPart = new List<string>();
        var used = 0;
        foreach (var tag in tags)
        {
            var size = tagSize(tag);
            if (used + size > budget && (tagPart.Count > 0 || digestPart.Count > 0))
            {
                yield return (tagPart, digestPart);
                (tagPart, digestPart, used) = ([], [], 0);
            }

            tagPart.Add(tag);
            used += size;
        }

        foreach (var digest in digests)
        {
            var size = digest.Length + 3;
            if (used + size > budget && (tagPart.Count > 0 || digestPart.Count > 0))
            {
                yield return (tagPart, digestPart);
                (tagPart, digestPart, used) = ([], [], 0);
            }

            digestPart.Add(digest);
            used += size;
        }

        if (tagPart.Count > 0 || digestPart.Count > 0)
        {
            yield return (tagPart, digestPart);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "publish failed, retrying {kind} {sequence} {attempt} {error}")]
    private partial void LogPublishFailed(string kind, long sequence, int attempt, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "heartbeat not delivered {error}")]
    private partial void LogHeartbeatFailed(string error);
}
