using Microsoft.Extensions.Hosting;

namespace Spegel.Hosting;

/// <summary>A service's instruments that can start their known label values at zero.</summary>
public interface IPrimableMetrics
{
    /// <summary>Adds 0 to every counter for each label value known in advance, so rate() reads 0 rather than no data.</summary>
    void Prime();
}

/// <summary>
/// Primes the registered <see cref="IPrimableMetrics"/> once the meter provider listens (it is registered after it,
/// and hosted services start in order): a measurement made before the listener is enabled would be lost.
/// </summary>
internal sealed class MetricsPrimer(IEnumerable<IPrimableMetrics> metrics) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var m in metrics)
        {
            m.Prime();
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
