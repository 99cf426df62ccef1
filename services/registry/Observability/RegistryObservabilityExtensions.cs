using Spegel.Core.Observability;
using Spegel.Hosting;
using Spegel.Registry.Mirror;

namespace Spegel.Registry.Observability;

/// <summary>What the registry adds for operators: metrics, <c>/v1/status</c>, the cluster page through the resolver, Dapr metadata.</summary>
public static class RegistryObservabilityExtensions
{
    public const string StatusPath = "/v1/status";

    /// <summary>Registers the instruments and the status ring; call after the mirror is registered (it decorates the peer resolver).</summary>
    public static WebApplicationBuilder AddRegistryObservability(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddSingleton<RegistryMetrics>();
        services.AddSingleton<IPrimableMetrics>(sp => sp.GetRequiredService<RegistryMetrics>());
        services.AddSingleton<RegistryActivity>();
        services.AddSingleton<ClusterPageProxy>();

        // The mirror's lookups, timed: MirrorService gets the registered resolver wrapped, whatever it is (tests replace it).
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<MirrorService>(
            sp, (IPeerResolver)new TimedPeerResolver(sp.GetRequiredService<IPeerResolver>(), sp.GetRequiredService<RegistryMetrics>())));
        return builder;
    }

    /// <summary>Counts every distribution request (inside the request log) and maps <c>/metrics</c>, <c>/v1/status</c> and <c>/ui/…</c>.</summary>
    public static WebApplication MapRegistryObservability(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseMiddleware<RegistryObservabilityMiddleware>();
        app.MapSpegelMetrics();
        app.MapGet(StatusPath, (RegistryActivity activity) => Results.Json(activity.Snapshot(), RegistryStatusJsonContext.Default.RegistryStatus));
        app.MapMethods(ClusterPageProxy.PathPrefix + "/{**rest}", [HttpMethods.Get, HttpMethods.Head], (HttpContext context, ClusterPageProxy proxy) => proxy.ForwardAsync(context));
        return app;
    }
}
