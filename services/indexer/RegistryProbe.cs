using Microsoft.Extensions.Options;
using Spegel.Hosting;

namespace Spegel.Indexer;

/// <summary>
/// Whether this node's registry still answers at <c>Spegel:Node:Address</c>, the URL peers use. The indexer and the
/// registry are separate DaemonSets: a registry that is stopped (rolling update, SIGTERM, crash) leaves an indexer
/// that would go on heartbeating, and every resolver would go on offering a node that refuses connections. Gating
/// the heartbeat on this probe withdraws such a node within the resolver's node timeout, and brings it back with
/// the first heartbeat after its registry answers again (its content was never withdrawn, only hidden).
/// </summary>
/// <remarks>
/// The probe counts only once the registry has answered at least once since the indexer started: an address that
/// has never answered (a registry still starting, or a setup with no registry at that URL) keeps heartbeats going
/// as before, so a slow registry start cannot hide a node that the resolver has always been told about.
/// </remarks>
public sealed partial class RegistryProbe(IHttpClientFactory clients, IOptions<NodeOptions> node, IOptions<IndexerOptions> options, ILogger<RegistryProbe> logger)
{
    public const string ClientName = "registry-probe";

    /// <summary>The registry's liveness route: it answers while Kestrel accepts connections, independent of containerd.</summary>
    private const string HealthRoute = "/healthz";

    private readonly Uri? health = node.Value.Address is { Length: > 0 } address ? new Uri(new Uri(address), HealthRoute) : null;
    private readonly string url = node.Value.Address ?? string.Empty;
    private bool everAnswered;
    private bool lastServing = true;

    /// <summary>
    /// True when the node's registry answers (or has never answered since start); false once it stopped answering
    /// within the probe timeout, the heartbeat interval (capped at 2 s).
    /// </summary>
    public async Task<bool> IsServingAsync(CancellationToken cancellationToken)
    {
        if (health is null || !options.Value.ProbeRegistry)
        {
            return true;
        }

        var answered = false;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromTicks(Math.Min(options.Value.HeartbeatInterval.Ticks, TimeSpan.FromSeconds(2).Ticks)));
        try
        {
            using var http = clients.CreateClient(ClientName);
            using var response = await http.GetAsync(health, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            answered = response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // Refused, reset or too slow: not serving peers either.
        }

        everAnswered |= answered;
        var serving = answered || !everAnswered;
        if (serving != lastServing)
        {
            lastServing = serving;
            if (serving)
            {
                LogRegistryBack(url);
            }
            else
            {
                LogRegistryGone(url);
            }
        }

        return serving;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "node registry not answering, heartbeats paused {url}")]
    private partial void LogRegistryGone(string url);

    [LoggerMessage(Level = LogLevel.Information, Message = "node registry answering again, heartbeats resumed {url}")]
    private partial void LogRegistryBack(string url);
}
