using Microsoft.Extensions.Logging;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.TestRig;

namespace Spegel.Indexer.Tests;

/// <summary>
/// The publisher seam (<see cref="IContentEventPublisher"/>), run against every transport: each subclass wires its
/// publisher to a <see cref="FakeSubscriber"/> that plays the resolver's subscription route. What every transport
/// must do: deliver an event once with its fields intact; never lose an event the subscriber asked to retry (either
/// <c>PublishAsync</c> throws, so the indexer's outbox keeps it, or the transport redelivers it); not retry a DROP,
/// and leave a log line saying so; throw when the transport itself cannot take the event.
/// </summary>
public abstract class ContentEventPublisherConformanceTests : IAsyncLifetime
{
    protected static readonly TimeSpan Settle = TimeSpan.FromSeconds(10);

    private readonly Stack<IAsyncDisposable> _owned = new();

    public FakeSubscriber Subscriber { get; private set; } = null!;

    public CapturedLogs Logs { get; } = new();

    protected IContentEventPublisher Publisher { get; private set; } = null!;

    /// <summary>
    /// True when the transport itself redelivers an event the subscriber answered RETRY or 5xx to (Dapr), so
    /// <c>PublishAsync</c> has already returned; false when it reports the answer by throwing (Standalone).
    /// </summary>
    protected abstract bool TransportRedelivers { get; }

    public async Task InitializeAsync()
    {
        Subscriber = await FakeSubscriber.StartAsync();
        Publisher = await CreatePublisherAsync(Subscriber);
    }

    public async Task DisposeAsync()
    {
        while (_owned.TryPop(out var owned))
        {
            await owned.DisposeAsync();
        }

        await Subscriber.DisposeAsync();
        Logs.Dispose();
    }

    [Fact]
    public async Task Publish_SubscriberAccepts_DeliveredOnceWithFieldsIntact()
    {
        var sent = Advertised(sequence: 7);

        await Publisher.PublishAsync(sent);
        await SettleAsync();

        var delivery = Assert.Single(Subscriber.Deliveries);
        Assert.StartsWith("application/cloudevents+json", delivery.ContentType, StringComparison.Ordinal);
        Assert.Equal("1.0", delivery.Envelope.GetProperty("specversion").GetString());
        Assert.Equal("application/json", delivery.Envelope.GetProperty("datacontenttype").GetString());
        Assert.Equal(ContentTopics.DefaultTopic, delivery.Envelope.GetProperty("topic").GetString());
        Assert.Equal(ContentTopics.DefaultPubSub, delivery.Envelope.GetProperty("pubsubname").GetString());
        var received = Assert.IsType<ContentAdvertised>(delivery.Event);
        Assert.Equal(sent.Version, received.Version);
        Assert.Equal(sent.Node, received.Node);
        Assert.Equal(sent.Address, received.Address);
        Assert.Equal(sent.Epoch, received.Epoch);
        Assert.Equal(sent.Sequence, received.Sequence);
        Assert.Equal(sent.Timestamp, received.Timestamp);
        Assert.Equal(sent.Digests, received.Digests);
        Assert.Equal(sent.Tags, received.Tags);
    }

    [Theory]
    [InlineData("RETRY")]
    [InlineData("500")]
    public async Task Publish_SubscriberAsksRetryOrFails_EventNotLost(string answer)
    {
        Subscriber.Answer(answer == "RETRY" ? SubscriberAnswer.Retry : SubscriberAnswer.Http(500));
        var sent = Advertised(sequence: 8);

        var thrown = await Record.ExceptionAsync(() => Publisher.PublishAsync(sent));
        if (thrown is not null)
        {
            // What the indexer's outbox does with an event whose publish threw: it keeps it and sends it again.
            Assert.IsType<HttpRequestException>(thrown);
            await Publisher.PublishAsync(sent);
        }

        await SettleAsync();

        Assert.Equal(!TransportRedelivers, thrown is not null);
        var deliveries = Subscriber.Deliveries;
        Assert.Equal(2, deliveries.Count);
        Assert.NotEqual(SubscriberAnswer.Success, deliveries[0].Answer);
        Assert.Equal(SubscriberAnswer.Success, deliveries[1].Answer);
        Assert.All(deliveries, d => Assert.Equal(sent.Sequence, d.Event.Sequence));
        Assert.Equal(deliveries[0].Id, deliveries[1].Id);
    }

    [Fact]
    public async Task Publish_SubscriberAnswersDrop_DoesNotThrowNorRetryAndLogs()
    {
        Subscriber.Answer(SubscriberAnswer.Drop);

        await Publisher.PublishAsync(Advertised(sequence: 9));
        await SettleAsync();

        var delivery = Assert.Single(Subscriber.Deliveries);
        Assert.Equal(SubscriberAnswer.Drop, delivery.Answer);
        var line = Assert.Single(Logs.Lines, l => IsDropLine(l.Message));
        Assert.Equal(LogLevel.Warning, line.Level);
    }

    [Fact]
    public async Task Publish_TransportUnavailable_Throws()
    {
        await BreakTransportAsync();

        await Assert.ThrowsAnyAsync<Exception>(() => Publisher.PublishAsync(Advertised(sequence: 10)));

        Assert.Empty(Subscriber.Deliveries);
    }

    /// <summary>Wires this transport's publisher to <paramref name="subscriber"/>, logging into <see cref="Logs"/>.</summary>
    protected abstract Task<IContentEventPublisher> CreatePublisherAsync(FakeSubscriber subscriber);

    /// <summary>Waits until the transport has nothing left in flight (deliveries and their retries).</summary>
    protected abstract Task SettleAsync();

    /// <summary>Makes the transport itself unable to take an event (the resolver or the sidecar gone).</summary>
    protected abstract Task BreakTransportAsync();

    /// <summary>The log line that reports a dropped event, from whichever part logs it for this transport.</summary>
    protected abstract bool IsDropLine(string message);

    /// <summary>Disposes <paramref name="part"/> with the test, after the parts owned later (last in, first out).</summary>
    protected T Own<T>(T part)
        where T : IAsyncDisposable
    {
        _owned.Push(part);
        return part;
    }

    /// <summary>The same for a part that is only <see cref="IDisposable"/>.</summary>
    protected T OwnSync<T>(T part)
        where T : IDisposable
    {
        _owned.Push(new SyncDisposal(part));
        return part;
    }

    private sealed class SyncDisposal(IDisposable part) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            part.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    protected static ContentAdvertised Advertised(long sequence) => new()
    {
        Node = "node-a",
        Address = "http://10.1.2.3:5000",
        Epoch = 1_750_000_000_000,
        Sequence = sequence,
        Timestamp = new DateTimeOffset(2026, 11, 30, 10, 0, 0, 123, TimeSpan.Zero),
        Digests = ["sha256:" + new string('a', 64), "sha256:" + new string('b', 64)],
        Tags = [new TagBinding("docker.io/library/nginx:1.27", "sha256:" + new string('a', 64))],
    };
}
