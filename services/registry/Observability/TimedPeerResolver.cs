using System.Diagnostics;
using Spegel.Core.Routing;
using Spegel.Registry.Mirror;

namespace Spegel.Registry.Observability;

/// <summary>Times every lookup the mirror path makes (<c>spegel_registry_resolve_duration_seconds</c>), answered from cache or not.</summary>
public sealed class TimedPeerResolver(IPeerResolver inner, RegistryMetrics metrics) : IPeerResolver
{
    public async Task<PeersResponse> LookupAsync(string key, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var answer = await inner.LookupAsync(key, cancellationToken);
            metrics.Resolved(Stopwatch.GetElapsedTime(started), answer.Peers.Count > 0 ? "found" : "empty");
            return answer;
        }
        catch
        {
            metrics.Resolved(Stopwatch.GetElapsedTime(started), "error");
            throw;
        }
    }
}
