using Microsoft.Extensions.Logging;
using Spegel.Core.State;
using Spegel.Hosting;

namespace Spegel.Indexer.Tests;

/// <summary>The Standalone transport: the indexer POSTs the CloudEvent straight to the resolver's route.</summary>
public sealed class StandaloneContentEventPublisherConformanceTests : ContentEventPublisherConformanceTests
{
    protected override bool TransportRedelivers => false;

    protected override Task<IContentEventPublisher> CreatePublisherAsync(FakeSubscriber subscriber)
    {
        var loggers = OwnSync(new LoggerFactory([Logs]));
        IContentEventPublisher publisher = new StandaloneContentEventPublisher(
            OwnSync(new HttpClient { Timeout = TimeSpan.FromSeconds(10) }),
            Microsoft.Extensions.Options.Options.Create(new ResolverClientOptions { Url = subscriber.Address.ToString() }),
            Microsoft.Extensions.Options.Options.Create(new IndexerOptions()),
            loggers.CreateLogger<StandaloneContentEventPublisher>());
        return Task.FromResult(publisher);
    }

    // The POST returns when the resolver has answered: nothing is left in flight.
    protected override Task SettleAsync() => Task.CompletedTask;

    protected override Task BreakTransportAsync() => Subscriber.DisposeAsync().AsTask();

    protected override bool IsDropLine(string message) => message.StartsWith("resolver dropped event ContentAdvertised 9", StringComparison.Ordinal);
}
