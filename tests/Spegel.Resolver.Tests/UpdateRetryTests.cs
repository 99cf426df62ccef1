using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Dapr;
using Spegel.Resolver.State;
using Xunit.Abstractions;
using static Spegel.Resolver.Tests.TestEvents;

namespace Spegel.Resolver.Tests;

/// <summary>
/// The bounded compare-and-swap loop (<see cref="RecordUpdater{T}"/>) and what the subscription route answers when it
/// gives up: a write that can never win ends as Contended after the attempt budget, and the route asks Dapr for a
/// redelivery (<c>{"status":"RETRY"}</c>) instead of acknowledging an event it did not apply.
/// </summary>
public sealed class UpdateRetryTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task UpdateAsync_EveryWriteLosesRace_ContendedAfterExactlyMaxAttempts()
    {
        var store = new FaultyKeyValueStore(new InMemoryKeyValueStore(TimeProvider.System), StoreFault.AlwaysLoseRace);
        var updater = new RecordUpdater<DigestRecord>(store, ResolverStateJsonContext.Default.DigestRecord, TimeProvider.System, new UpdatePolicy(Budget, MaxAttempts: 3));
        var watch = Stopwatch.StartNew();

        var outcome = await updater.UpdateAsync("digest|sha256:abc", Hold("node-a"));

        watch.Stop();
        Assert.Equal(UpdateOutcome.Contended, outcome);
        Assert.Equal(3, store.Writes);
        // Three attempts with backoffs capped at 100 ms: far inside the 5 s budget (the attempts, not the time, ran out).
        Assert.True(watch.Elapsed < Budget / 2, $"took {watch.Elapsed.TotalMilliseconds:0} ms");
        // The loop really stopped: no write after the outcome (the last backoff is at most 100 ms).
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        Assert.Equal(3, store.Writes);
        output.WriteLine($"Contended after {store.Writes} writes in {watch.Elapsed.TotalMilliseconds:0.0} ms");
    }

    [Fact]
    public async Task UpdateAsync_EveryWriteLosesRaceWithShortTimeout_ContendedWhenTimeRunsOutBeforeAttempts()
    {
        var store = new FaultyKeyValueStore(new InMemoryKeyValueStore(TimeProvider.System), StoreFault.AlwaysLoseRace);
        var timeout = TimeSpan.FromSeconds(1);
        var policy = new UpdatePolicy(timeout, MaxAttempts: 10_000) { MaxBackoff = TimeSpan.FromMilliseconds(20) };
        var updater = new RecordUpdater<DigestRecord>(store, ResolverStateJsonContext.Default.DigestRecord, TimeProvider.System, policy);
        // Warm up (JIT, serializer) on another key, so the first attempt does not eat the whole budget on a cold start.
        await new RecordUpdater<DigestRecord>(store, ResolverStateJsonContext.Default.DigestRecord, TimeProvider.System, new UpdatePolicy(timeout, 1))
            .UpdateAsync("digest|sha256:warm", Hold("node-a"));
        var warmWrites = store.Writes;
        var watch = Stopwatch.StartNew();

        var outcome = await updater.UpdateAsync("digest|sha256:abc", Hold("node-a"));

        watch.Stop();
        Assert.Equal(UpdateOutcome.Contended, outcome);
        Assert.True(watch.Elapsed >= timeout, $"gave up after {watch.Elapsed.TotalMilliseconds:0} ms, before the {timeout.TotalMilliseconds} ms budget");
        var writes = store.Writes - warmWrites;
        Assert.InRange(writes, 2, 9_999);
        output.WriteLine($"Contended after {writes} writes in {watch.Elapsed.TotalMilliseconds:0.0} ms (timeout {timeout.TotalMilliseconds} ms)");
    }

    [Fact]
    public async Task UpdateAsync_RepeatedLostRaces_BackoffsJitteredAndCapped()
    {
        const int attempts = 30;
        var cap = TimeSpan.FromMilliseconds(20);
        var time = new DelayRecordingTimeProvider();
        var store = new FaultyKeyValueStore(new InMemoryKeyValueStore(TimeProvider.System), StoreFault.AlwaysLoseRace);
        var policy = new UpdatePolicy(TimeSpan.FromSeconds(30), attempts) { BaseBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = cap };
        var updater = new RecordUpdater<DigestRecord>(store, ResolverStateJsonContext.Default.DigestRecord, time, policy);

        Assert.Equal(UpdateOutcome.Contended, await updater.UpdateAsync("digest|sha256:abc", Hold("node-a")));

        Assert.Equal(attempts, store.Writes);
        var delays = time.Delays;
        output.WriteLine($"{delays.Count} backoffs (ms): " + string.Join(", ", delays.Select(d => d.TotalMilliseconds.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture))));
        // One backoff after each lost race; a draw that rounds to 0 ms creates no timer, so a few may be missing.
        Assert.InRange(delays.Count, attempts / 2, attempts);
        Assert.All(delays, d => Assert.InRange(d, TimeSpan.Zero, cap));
        // Exponential growth past the base (2 ms after the first loss) up to the cap.
        Assert.Contains(delays, d => d > TimeSpan.FromMilliseconds(4));
        // Full jitter: an unjittered exponential backoff never decreases and sits at the cap once it reaches it;
        // 30 uniform draws (almost surely) go down somewhere and spread below the cap.
        Assert.True(delays.Zip(delays.Skip(1)).Any(p => p.Second < p.First), "backoffs never decrease: no jitter");
        Assert.True(delays.Skip(6).Distinct().Count() >= 3, "capped backoffs are (nearly) all equal: no jitter");
    }

    [Fact]
    public async Task PostCloudEvent_StoreAlwaysLosesRace_AnswersRetryAndLogsContended()
    {
        FaultyKeyValueStore? faulty = null;
        await using var host = await ResolverTestHost.StartAsync(
            new Dictionary<string, string?> { ["Spegel:Resolver:UpdateAttempts"] = "3" },
            configureServices: services => DecorateStore(services, inner => faulty = new FaultyKeyValueStore(inner, StoreFault.AlwaysLoseRace)));
        var watch = Stopwatch.StartNew();

        using var response = await host.Client.SendAsync(CloudEvent(Advertised("node-a", 1, [Digest("layer")]), "event-contended"));

        watch.Stop();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("RETRY", await StatusOf(response));
        // The event's own update (the node's record) was tried exactly UpdateAttempts = 3 times, then given up;
        // nothing past the node's touch (digests, index) was attempted.
        Assert.Equal(3, faulty!.WritesByKey.GetValueOrDefault("node|node-a"));
        Assert.DoesNotContain(faulty.WritesByKey.Keys, k => k.StartsWith("digest|", StringComparison.Ordinal));
        // The cluster page's member list is updated beside the event (not awaited by it), with the same budget.
        var deadline = DateTime.UtcNow + Budget;
        while (faulty.WritesByKey.GetValueOrDefault("members|all") < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        await Task.Delay(TimeSpan.FromMilliseconds(300));
        output.WriteLine("writes per key: " + string.Join(", ", faulty.WritesByKey.Select(w => $"{w.Key}={w.Value}")));
        Assert.All(faulty.WritesByKey, w => Assert.Equal(3, w.Value));
        Assert.True(watch.Elapsed < Budget, $"answered after {watch.Elapsed.TotalMilliseconds:0} ms");
        var line = Assert.Single(host.Logs.Lines, l => l.Message.StartsWith("content event retry requested, updates contended", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, line.Level);
        Assert.Contains("node-a", line.Message, StringComparison.Ordinal);
        Assert.Contains("event-contended", line.Message, StringComparison.Ordinal);
        output.WriteLine($"RETRY after {faulty.Writes} writes in {watch.Elapsed.TotalMilliseconds:0} ms: {line.Message}");
    }

    [Fact]
    public async Task PostCloudEvent_StoreThrows_AnswersRetryAndLogsFailure()
    {
        FaultyKeyValueStore? faulty = null;
        await using var host = await ResolverTestHost.StartAsync(
            configureServices: services => DecorateStore(services, inner => faulty = new FaultyKeyValueStore(inner, StoreFault.Throw)));

        using var response = await host.Client.SendAsync(CloudEvent(Advertised("node-a", 1, [Digest("layer")]), "event-failing"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("RETRY", await StatusOf(response));
        Assert.True(faulty!.Writes >= 1);
        var line = Assert.Single(host.Logs.Lines, l => l.Message.StartsWith("content event failed, retry requested", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Error, line.Level);
        Assert.Contains("event-failing", line.Message, StringComparison.Ordinal);
        Assert.Empty((await host.Client.GetFromJsonAsync<JsonElement>($"/v1/peers?key={Digest("layer")}")).GetProperty("peers").EnumerateArray());
    }

    private static Func<DigestRecord, bool> Hold(string node) => record =>
    {
        record.Nodes[node] = new HolderEntry { Epoch = 1, Sequence = 1, Held = true };
        return true;
    };

    /// <summary>Wraps the store the resolver registered (already instrumented) in <paramref name="wrap"/>.</summary>
    private static void DecorateStore(IServiceCollection services, Func<IKeyValueStore, IKeyValueStore> wrap)
    {
        var registered = services.Last(d => d.ServiceType == typeof(IKeyValueStore) && !d.IsKeyedService);
        services.Remove(registered);
        services.AddSingleton(sp => wrap(registered.ImplementationInstance as IKeyValueStore ?? (IKeyValueStore)registered.ImplementationFactory!(sp)));
    }

    private static HttpRequestMessage CloudEvent(ContentEvent contentEvent, string id)
    {
        var data = Encoding.UTF8.GetString(DaprContentEventPublisher.Serialize(contentEvent));
        var envelope = $$"""{"specversion":"1.0","id":"{{id}}","source":"indexer","type":"com.dapr.event.sent","topic":"content","pubsubname":"spegel-pubsub","datacontenttype":"application/json","data":{{data}}}""";
        return new HttpRequestMessage(HttpMethod.Post, ContentTopics.SubscriptionRoute)
        {
            Content = new StringContent(envelope, Encoding.UTF8, "application/cloudevents+json"),
        };
    }

    private static async Task<string?> StatusOf(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString();
}
