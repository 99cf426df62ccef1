using Dapr.Client;
using Microsoft.Extensions.Logging;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Dapr;
using Spegel.DaprDouble;

namespace Spegel.Indexer.Tests;

/// <summary>
/// The Dapr transport against the sidecar double: the indexer publishes through its own sidecar, and the resolver's
/// sidecar (app-id <c>resolver</c>, which found the route through <c>GET /dapr/subscribe</c>) delivers with Dapr's
/// retry and drop rules.
/// </summary>
public sealed class DaprContentEventPublisherConformanceTests : ContentEventPublisherConformanceTests
{
    private DaprBackplane? _backplane;
    private SidecarDouble? _indexerSidecar;

    protected override bool TransportRedelivers => true;

    protected override async Task<IContentEventPublisher> CreatePublisherAsync(FakeSubscriber subscriber)
    {
        var loggers = OwnSync(new LoggerFactory([Logs]));
        _backplane = Own(new DaprBackplane());
        PubSubComponent[] pubSubs = [new(ContentTopics.DefaultPubSub) { Type = "pubsub.redis" }];
        var resolverSidecar = await SidecarDouble.StartAsync(_backplane, new SidecarOptions
        {
            AppId = "resolver",
            AppUrl = subscriber.Address.ToString().TrimEnd('/'),
            PubSubs = pubSubs,
            LoggerFactory = loggers,
            DeliveryRetry = new DeliveryRetryOptions { MaxRetries = 3, InitialDelay = TimeSpan.FromMilliseconds(10) },
        });
        // A new consumer group starts at new messages: the subscription must be known before anything is published.
        await resolverSidecar.WaitForAppAsync(Settle);
        _indexerSidecar = await SidecarDouble.StartAsync(_backplane, new SidecarOptions { AppId = "indexer", PubSubs = pubSubs, LoggerFactory = loggers });
        var client = OwnSync(new DaprClientBuilder().UseGrpcEndpoint(_indexerSidecar.GrpcEndpoint).UseHttpEndpoint(_indexerSidecar.HttpEndpoint).Build());
        return new DaprContentEventPublisher(client, ContentTopics.DefaultPubSub, ContentTopics.DefaultTopic);
    }

    protected override Task SettleAsync() => _backplane!.WaitForIdleAsync(Settle);

    protected override async Task BreakTransportAsync() => await _indexerSidecar!.DisposeAsync();

    protected override bool IsDropLine(string message) => message.StartsWith("App resolver answered DROP to message", StringComparison.Ordinal);
}
