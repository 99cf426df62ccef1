using Microsoft.Extensions.Diagnostics.HealthChecks;
using Spegel.Containerd;

namespace Spegel.Registry;

/// <summary>Ready when containerd answers its version call within two seconds.</summary>
public sealed class ContainerdHealthCheck(ContainerdClient client) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            var version = await client.GetVersionAsync(timeout.Token);
            return HealthCheckResult.Healthy($"containerd {version} at {client.Socket}");
        }
        catch (Exception ex) when (ex is ContainerdUnavailableException or OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy($"containerd at {client.Socket} not reachable: {ex.Message}");
        }
    }
}
