using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Spegel.DaprDouble;

/// <summary>
/// The shared message broker. Each (pubsub, topic, app-id) is a consumer group with one queue:
/// a published message is copied to every group of its topic (fan-out across app-ids), and within a group
/// the instances compete for it (each message reaches one instance), as with Redis Streams or Kafka consumer groups.
/// Groups outlive their instances: messages wait in the queue until an instance of the app comes back.
/// </summary>
internal sealed class PubSubBroker(IdleTracker idle)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<GroupKey, ConsumerGroup> _groups = [];

    public int Publish(BrokerMessage message)
    {
        List<ConsumerGroup> targets;
        lock (_gate)
        {
            targets = _groups.Where(g => g.Key.PubSub == message.PubSub && g.Key.Topic == message.Topic)
                .Select(g => g.Value)
                .ToList();
        }

        foreach (var group in targets)
        {
            idle.Add();
            group.Queue.Writer.TryWrite(message);
        }

        return targets.Count;
    }

    /// <summary>Starts an instance's consumer on its app's group; disposing it stops the consumer and requeues what it held.</summary>
    public Consumer Subscribe(SidecarDouble sidecar, TopicSubscription subscription)
    {
        ConsumerGroup group;
        lock (_gate)
        {
            var key = new GroupKey(subscription.PubSubName, subscription.Topic, sidecar.AppId);
            if (!_groups.TryGetValue(key, out group!))
            {
                group = new ConsumerGroup(key);
                _groups[key] = group;
            }
        }

        return new Consumer(group, sidecar, subscription, idle);
    }

    /// <summary>Messages waiting per group, for diagnostics when the broker does not go idle.</summary>
    public string DescribeBacklog()
    {
        lock (_gate)
        {
            var waiting = _groups.Where(g => g.Value.Queue.Reader.Count > 0)
                .Select(g => string.Create(
                    CultureInfo.InvariantCulture,
                    $"{g.Key.PubSub}/{g.Key.Topic} for app '{g.Key.AppId}': {g.Value.Queue.Reader.Count} queued, {g.Value.ConsumerCount} consumer(s)"))
                .ToList();
            return waiting.Count == 0 ? "no queued messages (deliveries still in flight)" : string.Join("; ", waiting);
        }
    }

    internal readonly record struct GroupKey(string PubSub, string Topic, string AppId);

    internal sealed class ConsumerGroup(GroupKey key)
    {
        private int _consumers;

        public GroupKey Key { get; } = key;

        public Channel<BrokerMessage> Queue { get; } = Channel.CreateUnbounded<BrokerMessage>();

        public int ConsumerCount => Volatile.Read(ref _consumers);

        public void Joined() => Interlocked.Increment(ref _consumers);

        public void Left() => Interlocked.Decrement(ref _consumers);
    }

    /// <summary>One app instance reading one group: takes a message, delivers it (with retries), then the next.</summary>
    internal sealed class Consumer : IAsyncDisposable
    {
        private readonly ConsumerGroup _group;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public Consumer(ConsumerGroup group, SidecarDouble sidecar, TopicSubscription subscription, IdleTracker idle)
        {
            _group = group;
            _group.Joined();
            _loop = Task.Run(() => RunAsync(sidecar, subscription, idle, _stop.Token));
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
                // Stopping is the expected way out.
            }

            _group.Left();
            _stop.Dispose();
        }

        private async Task RunAsync(SidecarDouble sidecar, TopicSubscription subscription, IdleTracker idle, CancellationToken stop)
        {
            var reader = _group.Queue.Reader;
            while (await reader.WaitToReadAsync(stop))
            {
                while (reader.TryRead(out var message))
                {
                    try
                    {
                        await sidecar.DeliverAsync(subscription, message, stop);
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        // The instance went away mid-delivery: at-least-once, so the message goes back for another instance.
                        _group.Queue.Writer.TryWrite(message);
                        throw;
                    }
#pragma warning disable CA1031 // A fault in the double must not stall every later message of the group.
                    catch (Exception e)
#pragma warning restore CA1031
                    {
                        sidecar.Logger.LogError(e, "Delivering message {Id} on {Topic} to app {AppId} failed in the double; given up", message.Id, message.Topic, sidecar.AppId);
                    }

                    idle.Done();
                }
            }
        }
    }
}

/// <summary>Counts messages not yet settled (delivered, dropped or given up) and signals when none are left.</summary>
internal sealed class IdleTracker
{
    private readonly Lock _gate = new();
    private int _outstanding;
    private TaskCompletionSource _idle = NewCompleted();

    public int Outstanding
    {
        get
        {
            lock (_gate)
            {
                return _outstanding;
            }
        }
    }

    public void Add()
    {
        lock (_gate)
        {
            if (_outstanding++ == 0)
            {
                _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public void Done()
    {
        lock (_gate)
        {
            if (--_outstanding == 0)
            {
                _idle.TrySetResult();
            }
        }
    }

    public Task WhenIdle()
    {
        lock (_gate)
        {
            return _idle.Task;
        }
    }

    private static TaskCompletionSource NewCompleted()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs.SetResult();
        return tcs;
    }
}
