using Microsoft.Extensions.Options;
using Spegel.Resolver.State;

namespace Spegel.Resolver.Observability;

/// <summary>
/// Recomputes <c>spegel_resolver_live_nodes</c> and <c>spegel_resolver_known_nodes</c> from the state store every
/// <see cref="ClusterPageOptions.RefreshInterval"/> (any resolver replica sees the whole cluster), and drops from
/// the members record the nodes whose record has expired.
/// </summary>
public sealed partial class NodeGaugeRefresher(
    ClusterMembers members,
    PeerMap map,
    ResolverMetrics metrics,
    IOptions<ResolverOptions> resolverOptions,
    IOptions<ClusterPageOptions> pageOptions,
    TimeProvider time,
    ILogger<NodeGaugeRefresher> logger) : BackgroundService
{
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var names = await members.ListAsync(cancellationToken);
        var records = await map.ReadNodesAsync(names, cancellationToken);
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var timeoutMs = (long)resolverOptions.Value.NodeTimeout.TotalMilliseconds;
        metrics.Nodes(records.Values.Count(r => r.LastSeen > 0 && nowMs - r.LastSeen <= timeoutMs), records.Count);
        await members.ForgetAsync([.. names.Where(n => !records.ContainsKey(n))]);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(pageOptions.Value.RefreshInterval, time);
        var failures = 0;
        do
        {
            try
            {
                await RefreshAsync(stoppingToken);
                failures = 0;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // The store is away (the sidecar starting, say): the gauges keep their last values.
                if (failures++ % 12 == 0)
                {
                    LogRefreshFailed(ex.Message);
                }
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "node gauges not refreshed {error}")]
    private partial void LogRefreshFailed(string error);
}
