using Dapr.Client;
using Mediator;
using Microsoft.Extensions.Options;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Dapr;
using Spegel.Hosting;
using Spegel.Resolver.Events;
using Spegel.Resolver.Lookup;
using Spegel.Resolver.Observability;
using Spegel.Resolver.State;

namespace Spegel.Resolver;

/// <summary>Registers and maps the resolver service.</summary>
public static class ResolverHostingExtensions
{

    public static WebApplicationBuilder AddResolver(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddValidatedOptions<ResolverOptions>(ResolverOptions.SectionName);
        builder.Services.AddDaprClient();
        builder.Services.AddSingleton<IKeyValueStore>(sp =>
            sp.GetRequiredService<IOptions<SpegelOptions>>().Value.TransportKind == Transport.Dapr
                ? new DaprKeyValueStore(sp.GetRequiredService<DaprClient>(), sp.GetRequiredService<IOptions<ResolverOptions>>().Value.StateStore)
                : new InMemoryKeyValueStore(sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddResolverDomain();
        builder.AddResolverMonitoring();
        return builder;
    }

    /// <summary>The map, the lookup and the event handlers, over whatever <see cref="IKeyValueStore"/> is registered.</summary>
    public static IServiceCollection AddResolverDomain(this IServiceCollection services)
    {
        services.AddMediator(options => options.ServiceLifetime = ServiceLifetime.Singleton);
        services.AddSingleton<PeerMap>();
        services.AddSingleton<PeerLookup>();
        services.AddSingleton<ContentEventDispatcher>();
        services.AddSingleton<ContentEventReceiver>();
        services.AddSingleton<PeersEndpoint>();
        services.AddResolverObservability();
        return services;
    }

    public static WebApplication MapResolver(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // Raw configuration, not IOptions: options are validated (with every error reported) when the host starts.
        var pubSub = app.Configuration[$"{ResolverOptions.SectionName}:{nameof(ResolverOptions.PubSub)}"] ?? ContentTopics.DefaultPubSub;
        var topic = app.Configuration[$"{ResolverOptions.SectionName}:{nameof(ResolverOptions.Topic)}"] ?? ContentTopics.DefaultTopic;

        // With APP_API_TOKEN set, only calls that came through the Dapr sidecar reach the routes below.
        app.UseAppApiToken(app.Configuration[AppApiTokenMiddleware.EnvironmentVariable]);

        // An envelope that is not even JSON fails inside the CloudEvents middleware, before any handler runs:
        // answer DROP there too, so a poison message is dropped once instead of retried as a 500.
        app.UseMiddleware<MalformedEnvelopeMiddleware>();

        // Unwraps structured CloudEvents (from the sidecar, or POSTed directly by a Standalone indexer).
        app.UseCloudEvents(new global::Dapr.CloudEventsMiddlewareOptions { ForwardCloudEventPropertiesAsHeaders = true, IncludedCloudEventPropertiesAsHeaders = ["id"] });
        app.MapSubscribeHandler();
        app.MapPost(ContentTopics.SubscriptionRoute, (HttpRequest request, ContentEventReceiver receiver, CancellationToken ct) => receiver.ReceiveAsync(request, ct))
            .WithTopic(pubSub, topic);
        app.MapResolverObservability();
        app.MapGet(Spegel.Core.Routing.PeersRoute.Path, (string? key, string? exclude, PeersEndpoint endpoint, CancellationToken ct) => endpoint.AnswerAsync(key, exclude, ct));
        return app;
    }
}
