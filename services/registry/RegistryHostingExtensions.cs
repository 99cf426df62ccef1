using Microsoft.Extensions.Options;
using Spegel.Containerd;
using Spegel.Core.Content;
using Spegel.Hosting;
using Spegel.Registry.Mirror;
using Spegel.Registry.Observability;

namespace Spegel.Registry;

/// <summary>Registers and maps the registry service: the distribution API over the node's containerd.</summary>
public static class RegistryHostingExtensions
{
    public static WebApplicationBuilder AddRegistry(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddValidatedOptions<RegistryOptions>(RegistryOptions.SectionName);
        services.AddOptions<ContainerdOptions>().BindConfiguration(ContainerdOptions.SectionName);
        services.AddSingleton(sp => new ContainerdClient(
            sp.GetRequiredService<IOptions<ContainerdOptions>>().Value,
            sp.GetRequiredService<ILogger<ContainerdClient>>()));
        services.AddSingleton<ILocalContent, ContainerdLocalContent>();
        services.AddPrivateContentPolicy();
        services.AddSingleton<DistributionHandler>();
        AddMirror(builder);
        builder.AddRegistryObservability();
        services.AddHealthChecks().AddCheck<ContainerdHealthCheck>("containerd", tags: [SpegelDefaultsExtensions.ReadyTag]);

        // Registry clients send large headers only by mistake or malice; keep Kestrel's limits tight.
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.Limits.MaxRequestLineSize = 8 * 1024;
            kestrel.AddServerHeader = false;
        });
        return builder;
    }

    private static void AddMirror(WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedOptions<MirrorOptions>(MirrorOptions.SectionName);
        // Without a resolver the registry still serves its own node's content; it just cannot mirror.
        services.AddResolverClientOptions(requireUrlInStandalone: false);
        services.AddSingleton<PeerHealth>();
        services.AddSingleton<ManifestCache>();
        services.AddSingleton<MirrorSpool>();
        services.AddSingleton<HedgedPeerClient>();
        services.AddSingleton<MirrorService>();
        services.AddSingleton<IPeerResolver, HttpPeerResolver>();
        services.AddHostedService<MirrorWarmup>();

        // Peers: no redirects (an answer must come from the peer the resolver named), no decompression (bytes are
        // hashed as sent), a short connect timeout so a dead peer costs little; the hedging bounds the rest.
        var peersClient = services.AddHttpClient(HedgedPeerClient.ClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                AutomaticDecompression = System.Net.DecompressionMethods.None,
                ConnectTimeout = TimeSpan.FromMilliseconds(500),
                PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
                UseProxy = false,
            });

        // Every request to a peer carries the shared peer token when one is configured; a registry peers can reach
        // (Dapr transport, or listening beyond loopback) must have one unless Spegel:PeerAuthentication=None.
        services.AddValidatedOptions<PeerAuthOptions>(PeerAuthOptions.SectionName)
            .Configure<IOptions<SpegelOptions>, IConfiguration>((auth, spegel, configuration) =>
                auth.ReachableBecause = PeerReachability.Reason(spegel.Value.TransportKind, configuration));
        services.AddHostedService<PeerAuthenticationWarning>();
        peersClient.AddHttpMessageHandler(sp => sp.GetRequiredService<IOptions<PeerAuthOptions>>().Value.Token is { } token
            ? new PeerTokenHandler(token)
            : new PassThroughHandler());

        var spegel = builder.Configuration.GetSection(SpegelOptions.SectionName).Get<SpegelOptions>() ?? new SpegelOptions();
        var resolver = builder.Configuration.GetSection(ResolverClientOptions.SectionName).Get<ResolverClientOptions>() ?? new ResolverClientOptions();
        var client = services.AddHttpClient(HttpPeerResolver.ClientName, c => c.Timeout = Timeout.InfiniteTimeSpan);
        if (spegel.TransportKind == Transport.Dapr)
        {
            // What DaprClient.CreateInvokeHttpClient(appId) builds: http://<app-id>/… rewritten to the sidecar's
            // /v1.0/invoke/<app-id>/method/…, with DAPR_HTTP_ENDPOINT and DAPR_API_TOKEN from the environment.
            client.ConfigureHttpClient(c => c.BaseAddress = new Uri($"http://{resolver.AppId}"))
                .ConfigurePrimaryHttpMessageHandler(() => new global::Dapr.Client.InvocationHandler { InnerHandler = new SocketsHttpHandler { UseProxy = false } });
        }
        else if (resolver.Url is not null && Uri.TryCreate(resolver.Url, UriKind.Absolute, out var url))
        {
            client.ConfigureHttpClient(c => c.BaseAddress = url)
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromMilliseconds(500) });
        }
    }

    public static WebApplication MapRegistry(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseMiddleware<RequestLogMiddleware>();
        app.MapRegistryObservability();
        app.Map("/v2", (HttpContext context, DistributionHandler handler) => handler.HandleAsync(context));
        app.Map("/v2/{**rest}", (HttpContext context, DistributionHandler handler) => handler.HandleAsync(context));
        return app;
    }
}
