using System.Collections.Concurrent;

namespace Spegel.DaprDouble;

/// <summary>
/// What the sidecars of a cluster share: the state databases, the message broker and name resolution
/// (the "Redis" and the "DNS" behind several daprd). Create one per test, start sidecars on it, dispose it last.
/// </summary>
public sealed class DaprBackplane : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, StateBackend> _stateBackends = new(StringComparer.Ordinal);
    private readonly Lock _sidecarsGate = new();
    private readonly List<SidecarDouble> _sidecars = [];
    private readonly ConcurrentDictionary<string, int> _roundRobin = new(StringComparer.Ordinal);
    private readonly IdleTracker _idle = new();
    private readonly CounterSet _counters = new();

    /// <summary>Creates a backplane.</summary>
    /// <param name="timeProvider">The clock for state TTLs and message expiry (a fake one lets tests move time). Default: the system clock.</param>
    public DaprBackplane(TimeProvider? timeProvider = null)
    {
        TimeProvider = timeProvider ?? TimeProvider.System;
        Broker = new PubSubBroker(_idle);
    }

    /// <summary>The clock for state TTLs and message expiry.</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>Pub/sub activity of all sidecars on this backplane.</summary>
    public DeliveryCounters Counters => _counters.Snapshot();

    /// <summary>Sidecars currently running on this backplane.</summary>
    public IReadOnlyList<SidecarDouble> Sidecars
    {
        get
        {
            lock (_sidecarsGate)
            {
                return [.. _sidecars];
            }
        }
    }

    internal PubSubBroker Broker { get; }

    internal CounterSet CounterSet => _counters;

    /// <summary>
    /// Completes when every published message has been settled (delivered, dropped or given up).
    /// Throws <see cref="TimeoutException"/>, naming what is still queued, when that takes longer than <paramref name="timeout"/>.
    /// </summary>
    public async Task WaitForIdleAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        try
        {
            await _idle.WhenIdle().WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException(
                $"Pub/sub did not go idle within {timeout}: {_idle.Outstanding} message(s) unsettled; {Broker.DescribeBacklog()}.");
        }
    }

    /// <summary>The keys as stored in a state backend (with their Dapr prefixes), live ones only.</summary>
    public IReadOnlyCollection<string> GetStoredKeys(string backend) =>
        _stateBackends.TryGetValue(backend, out var store) ? [.. store.Snapshot().Keys] : [];

    /// <summary>The raw stored value of a key, prefix included (e.g. <c>resolver||node|a</c>); null when missing or expired.</summary>
    public byte[]? GetStoredValue(string backend, string storedKey) =>
        _stateBackends.TryGetValue(backend, out var store) ? store.Get(storedKey)?.Value : null;

    /// <summary>Stops every sidecar still running.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var sidecar in Sidecars)
        {
            await sidecar.DisposeAsync();
        }
    }

    internal StateBackend StateBackend(string name) =>
        _stateBackends.GetOrAdd(name, _ => new StateBackend(TimeProvider));

    internal void Register(SidecarDouble sidecar)
    {
        lock (_sidecarsGate)
        {
            _sidecars.Add(sidecar);
        }
    }

    internal void Unregister(SidecarDouble sidecar)
    {
        lock (_sidecarsGate)
        {
            _sidecars.Remove(sidecar);
        }
    }

    /// <summary>Name resolution for service invocation: the next instance of the app that has an app address (round robin).</summary>
    internal SidecarDouble? ResolveApp(string appId)
    {
        var candidates = Sidecars
            .Where(s => s.AppUrl is not null
                && (string.Equals(s.AppId, appId, StringComparison.OrdinalIgnoreCase)
                    || string.Equals($"{s.AppId}.{s.Namespace}", appId, StringComparison.OrdinalIgnoreCase)))
            .ToList();
        if (candidates.Count == 0)
        {
            return null;
        }

        var turn = _roundRobin.AddOrUpdate(appId.ToLowerInvariant(), 0, (_, n) => unchecked(n + 1));
        return candidates[(int)((uint)turn % (uint)candidates.Count)];
    }

    internal void Published(BrokerMessage message)
    {
        _counters.Published();
        Broker.Publish(message);
    }
}
