using Microsoft.Extensions.Options;
using Spegel.Core.Observability;
using Spegel.Hosting;

namespace Spegel.Registry.Observability;

/// <summary>
/// What <c>GET /v1/status</c> reports: counters of what containerd got through this registry since start, and a
/// bounded ring of its most recent manifest and blob requests (the cluster page merges them across nodes).
/// </summary>
public sealed class RegistryActivity(IOptions<NodeOptions> node, TimeProvider time)
{
    /// <summary>How many recent requests are kept.</summary>
    public const int RecentCapacity = 100;

    private readonly RecentRequest?[] ring = new RecentRequest?[RecentCapacity];
    private readonly Lock gate = new();
    private readonly DateTimeOffset started = time.GetUtcNow();
    private long next;
    private long local;
    private long peer;
    private long miss;
    private long bytesLocal;
    private long bytesFromPeers;
    private long bytesToPeers;

    public void Record(RecentRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        switch (Outcome(request.Source, request.Status))
        {
            case Outcomes.Local:
                Interlocked.Increment(ref local);
                Interlocked.Add(ref bytesLocal, request.Bytes);
                break;
            case Outcomes.Peer:
                Interlocked.Increment(ref peer);
                Interlocked.Add(ref bytesFromPeers, request.Bytes);
                break;
            case Outcomes.Miss:
                Interlocked.Increment(ref miss);
                break;
        }

        lock (gate)
        {
            ring[next++ % RecentCapacity] = request;
        }
    }

    public void ServedToPeer(long bytes) => Interlocked.Add(ref bytesToPeers, bytes);

    public RegistryStatus Snapshot()
    {
        var recent = new List<RecentRequest>(RecentCapacity);
        lock (gate)
        {
            for (var i = next - 1; i >= 0 && i >= next - RecentCapacity; i--)
            {
                recent.Add(ring[i % RecentCapacity]!);
            }
        }

        var totals = new RegistryTotals(
            Interlocked.Read(ref local), Interlocked.Read(ref peer), Interlocked.Read(ref miss),
            Interlocked.Read(ref bytesLocal), Interlocked.Read(ref bytesFromPeers), Interlocked.Read(ref bytesToPeers));
        return new RegistryStatus(node.Value.Name, started, totals, recent);
    }

    internal static bool IsHit(int status) => status is >= 200 and < 300;

    /// <summary>
    /// What a containerd request came to: <c>local</c> or <c>peer</c> when answered 2xx from this node or a peer,
    /// <c>filtered</c> when the registry refused it by configuration, otherwise <c>miss</c> (containerd goes upstream).
    /// </summary>
    public static string Outcome(string source, int status) =>
        source == Outcomes.Filtered ? Outcomes.Filtered
        : !IsHit(status) || source == Outcomes.Miss || source == "unavailable" ? Outcomes.Miss
        : source == Outcomes.Local ? Outcomes.Local
        : Outcomes.Peer;

    /// <summary>The outcomes of a containerd request (the <c>outcome</c> label).</summary>
    public static class Outcomes
    {
        public const string Local = "local";
        public const string Peer = "peer";
        public const string Miss = "miss";
        public const string Filtered = "filtered";
    }
}
