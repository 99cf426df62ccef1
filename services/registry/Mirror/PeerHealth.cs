using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Spegel.Core.Routing;

namespace Spegel.Registry.Mirror;

/// <summary>
/// What this registry learned about its peers: how fast they answer (to learn the hedge delay) and which ones
/// recently failed or lied (tried last for a while rather than never, so a cluster of one bad peer still works).
/// </summary>
public sealed class PeerHealth(IOptions<MirrorOptions> options, TimeProvider time)
{
    private const int Window = 128;
    private const int MinSamples = 8;
    private static readonly TimeSpan FailurePenalty = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, DateTimeOffset> penalised = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> lied = new(StringComparer.Ordinal);
    private readonly double[] latencies = new double[Window];
    private readonly Lock gate = new();
    private int count;
    private int next;

    /// <summary>The p90 of recent header latencies, times 1.5, clamped; the configured default until there are enough samples.</summary>
    public TimeSpan HedgeDelay
    {
        get
        {
            var o = options.Value;
            double[] sample;
            lock (gate)
            {
                if (count < MinSamples)
                {
                    return o.MirrorHedgeDelay;
                }

                sample = latencies[..Math.Min(count, Window)];
            }

            Array.Sort(sample);
            var p90 = sample[(int)Math.Ceiling(sample.Length * 0.9) - 1];
            var delay = TimeSpan.FromMilliseconds(p90 * 1.5);
            return delay < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : delay > o.MirrorMaxHedgeDelay ? o.MirrorMaxHedgeDelay : delay;
        }
    }

    public void RecordLatency(TimeSpan headers)
    {
        lock (gate)
        {
            latencies[next] = headers.TotalMilliseconds;
            next = (next + 1) % Window;
            count++;
        }
    }

    public void RecordFailure(Peer peer) => Penalise(peer, FailurePenalty);

    public void RecordMismatch(Peer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        lied[peer.Node] = time.GetUtcNow() + options.Value.MirrorBadPeerPenalty;
        Penalise(peer, options.Value.MirrorBadPeerPenalty);
    }

    /// <summary>A peer that recently sent bytes not matching their digest.</summary>
    public bool HasLied(Peer peer) =>
        lied.TryGetValue(peer.Node, out var until) && until > time.GetUtcNow();

    public bool IsPenalised(Peer peer) =>
        penalised.TryGetValue(peer.Node, out var until) && until > time.GetUtcNow();

    /// <summary>
    /// The resolver's order, with penalised peers moved to the end (in their own order). A peer that lied is left
    /// out altogether while another candidate exists: even as a hedge it could win and send wrong bytes again.
    /// </summary>
    public IReadOnlyList<Peer> Order(IReadOnlyList<Peer> peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        var candidates = peers.Where(p => !HasLied(p)).ToList();
        if (candidates.Count == 0)
        {
            candidates = [.. peers];
        }

        return candidates.Where(p => !IsPenalised(p)).Concat(candidates.Where(IsPenalised)).ToList();
    }

    private void Penalise(Peer peer, TimeSpan duration) => penalised[peer.Node] = time.GetUtcNow() + duration;
}
