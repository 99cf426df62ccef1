using Microsoft.Extensions.Options;
using Spegel.Containerd;
using Spegel.Core.Content;
using Spegel.Core.State;
using Spegel.Dapr;
using Spegel.Hosting;
using Spegel.Indexer.Observability;

namespace Spegel.Indexer;

/// <summary>Registers and maps the indexer: containerd watcher → events → publisher of the chosen transport.</summary>
public static class IndexerHostingExtensions
{
    public static WebApplicationBuilder AddIndexer(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddValidatedOptions<IndexerOptions>(IndexerOptions.SectionName);
        services.AddResolverClientOptions(requireUrlInStandalone: true);
        services.AddOptions<ContainerdOptions>().BindConfiguration(ContainerdOptions.SectionName);
        services.AddSingleton(sp => new ContainerdClient(
            sp.GetRequiredService<IOptions<ContainerdOptions>>().Value,
            sp.GetRequiredService<ILogger<ContainerdClient>>()));
        services.AddSingleton<IContentWatcher, ContainerdContentWatcher>();
        services.AddPrivateContentPolicy();

        var transport = builder.Configuration.GetSection(SpegelOptions.SectionName).Get<SpegelOptions>() ?? new SpegelOptions();
        if (transport.TransportKind == Transport.Dapr)
        {
            services.AddDaprClient();
            services.AddSingleton<IContentEventPublisher>(sp => new DaprContentEventPublisher(
                sp.GetRequiredService<global::Dapr.Client.DaprClient>(),
                sp.GetRequiredService<IOptions<IndexerOptions>>().Value.PubSub,
                sp.GetRequiredService<IOptions<IndexerOptions>>().Value.Topic));
        }
        else
        {
            services.AddHttpClient<IContentEventPublisher, StandaloneContentEventPublisher>(c => c.Timeout = TimeSpan.FromSeconds(5));
        }

        services.AddHttpClient(RegistryProbe.ClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.FromSeconds(30) });
        services.AddSingleton<RegistryProbe>();
        services.AddSingleton<EventOutbox>();
        services.AddHostedService(sp => sp.GetRequiredService<EventOutbox>());
        services.AddSingleton<IndexerWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<IndexerWorker>());
        builder.AddIndexerObservability();
        services.AddHealthChecks().AddCheck<IndexerReadyCheck>("containerd", tags: [SpegelDefaultsExtensions.ReadyTag]);
        return builder;
    }

    public static WebApplication MapIndexer(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapIndexerObservability();
        app.MapGet("/v1/status", (IndexerWorker worker, EventOutbox outbox) => Results.Json(new IndexerStatus(
            worker.Connected, worker.Images, worker.Digests, worker.Tags, worker.Reconnects, outbox.Epoch, outbox.Published, outbox.Pending)));
        return app;
    }
}

/// <summary>What <c>GET /v1/status</c> answers: the indexer's view of its node.</summary>
public sealed record IndexerStatus(bool Connected, int Images, int Digests, int Tags, int Reconnects, long Epoch, long Published, long Pending);

/// <summary>Ready while the indexer follows containerd.</summary>
public sealed class IndexerReadyCheck(IndexerWorker worker) : Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck
{
    public Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(
        Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(worker.Connected
            ? Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy("following containerd")
            : Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Unhealthy("not connected to containerd"));
}
