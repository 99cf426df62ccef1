using Spegel.Core.State;
using Spegel.Hosting;

namespace Spegel.Resolver.Observability;

/// <summary>What the resolver adds for operators: metrics, the members record, the cluster page, Dapr metadata.</summary>
public static class ResolverObservabilityExtensions
{
    /// <summary>The instruments and the members record, which the domain's endpoints report to.</summary>
    public static IServiceCollection AddResolverObservability(this IServiceCollection services)
    {
        services.AddMetrics();
        services.AddSingleton<ResolverMetrics>();
        services.AddSingleton<ClusterMembers>();
        services.AddSingleton<EventObserver>();
        return services;
    }

    /// <summary>
    /// The hosted parts: Prometheus export, the conflict-counting store (wrapping the registered one), the node
    /// gauges, the cluster page's view and its status client, Dapr metadata. Call after the store is registered.
    /// </summary>
    public static WebApplicationBuilder AddResolverMonitoring(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddValidatedOptions<ClusterPageOptions>(ClusterPageOptions.SectionName);
        services.AddSingleton<IPrimableMetrics>(sp => sp.GetRequiredService<ResolverMetrics>());

        var store = services.LastOrDefault(d => d.ServiceType == typeof(IKeyValueStore) && !d.IsKeyedService)
            ?? throw new InvalidOperationException("register the resolver's IKeyValueStore before AddResolverMonitoring");
        services.Remove(store);
        services.AddSingleton<IKeyValueStore>(sp => new InstrumentedKeyValueStore(Create(sp, store), sp.GetRequiredService<ResolverMetrics>()));

        services.AddSingleton<ClusterView>();
        services.AddHostedService<NodeGaugeRefresher>();
        services.AddHttpClient(ClusterView.StatusClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                UseProxy = false,
                AllowAutoRedirect = false,
                ConnectTimeout = TimeSpan.FromMilliseconds(500),
                PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            });
        return builder;
    }

    public static WebApplication MapResolverObservability(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapSpegelMetrics();
        app.MapClusterPage();
        return app;
    }

    private static IKeyValueStore Create(IServiceProvider services, ServiceDescriptor descriptor) =>
        (IKeyValueStore)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));
}
