using Spegel.Core.Content;
using Spegel.Core.State;
using Spegel.Hosting;

namespace Spegel.Indexer.Observability;

/// <summary>What the indexer adds for operators: metrics on <c>/metrics</c> and Dapr metadata.</summary>
public static class IndexerObservabilityExtensions
{
    /// <summary>
    /// Registers the instruments; call after the worker and the outbox are registered. The worker and the outbox
    /// are built with the registered watcher and publisher wrapped, whatever they are (tests replace them).
    /// </summary>
    public static WebApplicationBuilder AddIndexerObservability(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddSingleton<IndexerMetrics>();

        // The metrics read the worker and the outbox, which count through the metrics: resolved lazily, no cycle.
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<EventOutbox>(
            sp, (IContentEventPublisher)new ObservedContentEventPublisher(sp.GetRequiredService<IContentEventPublisher>(), sp.GetRequiredService<IndexerMetrics>)));
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<IndexerWorker>(
            sp, (IContentWatcher)new ObservedContentWatcher(sp.GetRequiredService<IContentWatcher>(), sp.GetRequiredService<IndexerMetrics>)));

        // Resolved (so its observable instruments exist) and primed when the host starts, not at first use.
        services.AddSingleton<IPrimableMetrics>(sp => sp.GetRequiredService<IndexerMetrics>());
        return builder;
    }

    public static WebApplication MapIndexerObservability(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapSpegelMetrics();
        return app;
    }
}
