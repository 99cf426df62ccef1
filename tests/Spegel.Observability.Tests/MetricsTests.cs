using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Spegel.Core;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Observability.Tests.Support;

namespace Spegel.Observability.Tests;

/// <summary>
/// GET /metrics on each service, after real traffic: a resolver, two nodes (registry + indexer each) over in-memory
/// content, an image pulled on node-a and fetched through node-b's registry, a miss, a dead peer.
/// </summary>
public sealed partial class MetricsTests
{
    [Fact]
    public async Task Scrape_AfterTraffic_HasEveryMetricTheDashboardQueries()
    {
        await using var cluster = await TestCluster.StartAsync("node-a", "node-b");
        await DriveTrafficAsync(cluster);

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var host in new[] { cluster.Resolver, cluster["node-a"].Registry, cluster["node-b"].Registry, cluster["node-a"].Indexer })
        {
            names.UnionWith((await host.ScrapeAsync()).Names);
        }

        var dashboard = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "monitoring", "grafana-dashboard.json"));
        var queried = MetricName().Matches(dashboard).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        Assert.True(queried.Count >= 20, $"the dashboard queries only {queried.Count} metrics");
        var missing = queried.Where(q => !names.Contains(q)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, "not in any scrape: " + string.Join(", ", missing));
    }

    [Fact]
    public async Task RegistryCounters_PeerHitMissAndDeadPeer_Move()
    {
        await using var cluster = await TestCluster.StartAsync("node-a", "node-b");
        var a = cluster["node-a"];
        var b = cluster["node-b"];
        var image = new MemoryImage("docker.io/library/moving:1.0");
        a.Pull(image);
        await WaitForPeersAsync(cluster, image.LayerDigest.ToString(), 1);
        var beforeB = await b.Registry.ScrapeAsync();
        var beforeA = await a.Registry.ScrapeAsync();

        using (var blob = await b.Registry.Client.GetAsync(image.BlobPath(image.LayerDigest)))
        {
            Assert.Equal(HttpStatusCode.OK, blob.StatusCode);
            Assert.Equal(image.Layer, await blob.Content.ReadAsByteArrayAsync());
        }

        var missing = Digest.ComputeSha256([1, 2, 3]);
        Assert.Equal(HttpStatusCode.NotFound, (await b.Registry.Client.GetAsync(image.BlobPath(missing))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await a.Registry.Client.GetAsync(image.BlobPath(image.ConfigDigest))).StatusCode);

        var afterB = await b.Registry.ScrapeAsync();
        var afterA = await a.Registry.ScrapeAsync();
        Assert.Equal(1, Delta(beforeB, afterB, "spegel_registry_mirror_requests_total", ("outcome", "peer"), ("registry", "docker.io")));
        Assert.Equal(1, Delta(beforeB, afterB, "spegel_registry_mirror_requests_total", ("outcome", "miss"), ("registry", "docker.io")));
        Assert.Equal(1, Delta(beforeA, afterA, "spegel_registry_mirror_requests_total", ("outcome", "local"), ("registry", "docker.io")));
        Assert.Equal(image.Layer.Length, Delta(beforeB, afterB, "spegel_registry_peer_fetched_bytes_total"));
        Assert.Equal(image.Layer.Length, Delta(beforeA, afterA, "spegel_registry_peer_served_bytes_total"));
        Assert.Equal(image.Config.Length, Delta(beforeA, afterA, "spegel_registry_local_served_bytes_total"));
        Assert.Equal(1, Delta(beforeB, afterB, "spegel_registry_requests_total", ("handler", "blob"), ("method", "GET"), ("status", "200")));
        Assert.Equal(1, Delta(beforeB, afterB, "spegel_registry_requests_total", ("handler", "blob"), ("method", "GET"), ("status", "404")));
        Assert.Equal(2, Delta(beforeB, afterB, "spegel_registry_resolve_duration_seconds_count"));
        Assert.Equal(1, Delta(beforeB, afterB, "spegel_registry_time_to_first_byte_seconds_count", ("source", "peer")));
        Assert.Equal(1, Delta(beforeB, afterB, "spegel_registry_time_to_first_byte_seconds_count", ("source", "miss")));

        // A peer that is gone: the resolver still lists it (alive by a fresh event), its port refuses connections.
        var dead = Digest.ComputeSha256([4, 5, 6]);
        await PostEventAsync(cluster.Resolver, new ContentAdvertised
        {
            Node = "node-gone", Address = $"http://127.0.0.1:{ClosedPort()}", Epoch = 1, Sequence = 1, Timestamp = DateTimeOffset.UtcNow,
            Digests = [dead.ToString()],
        });
        Assert.Equal(HttpStatusCode.NotFound, (await b.Registry.Client.GetAsync(image.BlobPath(dead))).StatusCode);
        var failed = await b.Registry.ScrapeAsync();
        Assert.Equal(1, Delta(afterB, failed, "spegel_registry_peer_failures_total", ("kind", "connect")));
    }

    [Fact]
    public async Task PeerFailures_LyingStalledAndSilentPeers_CountedByKind()
    {
        var lie = Digest.ComputeSha256([1, 1]);
        var stall = Digest.ComputeSha256([2, 2]);
        var silent = Digest.ComputeSha256([3, 3]);
        await using var peer = await FakePeer.StartAsync(async context =>
        {
            var path = context.Request.Path.Value!;
            if (path.EndsWith(silent.ToString(), StringComparison.Ordinal))
            {
                // No headers within the mirror's budget.
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            }

            context.Response.ContentLength = 4096;
            await context.Response.Body.WriteAsync(new byte[1024], context.RequestAborted);
            if (path.EndsWith(stall.ToString(), StringComparison.Ordinal))
            {
                await context.Response.Body.FlushAsync(context.RequestAborted);
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            }

            await context.Response.Body.WriteAsync(new byte[3072], context.RequestAborted);
        });
        await using var resolver = await ServiceHost.StartAsync("resolver", new Dictionary<string, string?>());
        await using var registry = await ServiceHost.StartAsync("registry", new Dictionary<string, string?>
        {
            ["Spegel:Node:Name"] = "node-b",
            ["Spegel:Resolver:Url"] = resolver.Address,
            ["Spegel:MirrorReadTimeout"] = "00:00:00.200",
            ["Spegel:MirrorResolveTimeout"] = "00:00:00.500",
        }, services => services.Replace(ServiceDescriptor.Singleton<Core.Content.ILocalContent>(new Core.Content.InMemoryLocalContent())));
        await PostEventAsync(resolver, new ContentAdvertised
        {
            Node = "node-odd", Address = peer.Address, Epoch = 1, Sequence = 1, Timestamp = DateTimeOffset.UtcNow,
            Digests = [lie.ToString(), stall.ToString(), silent.ToString()],
        });
        var before = await registry.ScrapeAsync();

        foreach (var digest in new[] { lie, stall })
        {
            // The registry aborts the response rather than complete wrong or partial bytes.
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => registry.Client.GetByteArrayAsync($"/v2/library/odd/blobs/{digest}?ns=docker.io"));
        }

        Assert.Equal(HttpStatusCode.NotFound, (await registry.Client.GetAsync($"/v2/library/odd/blobs/{silent}?ns=docker.io")).StatusCode);

        var after = await Eventually.GetAsync(registry.ScrapeAsync, s => Delta(before, s, "spegel_registry_peer_failures_total") >= 3, "three peer failures");
        Assert.Equal(1, Delta(before, after, "spegel_registry_peer_failures_total", ("kind", "digest_mismatch")));
        Assert.Equal(2, Delta(before, after, "spegel_registry_peer_failures_total", ("kind", "timeout")));
    }

    /// <summary>
    /// A peer that sends its headers and 1 KiB of a 4 KiB blob, then aborts the connection (an RST mid-body). Both of
    /// the registry's ways of reading a peer body meet it: the default (a blob this small is read whole and verified
    /// in memory before a byte is sent) and streaming (verify-before-send and the spool off), where the bytes flow
    /// as they arrive. Either way the failure is counted as a reset.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PeerFailures_PeerResetsMidBody_CountedAsReset(bool streaming)
    {
        var blob = Digest.ComputeSha256([4, 4]);
        await using var peer = await FakePeer.StartAsync(async context =>
        {
            context.Response.ContentLength = 4096;
            await context.Response.Body.WriteAsync(new byte[1024], context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            context.Abort();
        });
        await using var resolver = await ServiceHost.StartAsync("resolver", new Dictionary<string, string?>());
        var settings = new Dictionary<string, string?>
        {
            ["Spegel:Node:Name"] = "node-b",
            ["Spegel:Resolver:Url"] = resolver.Address,
            ["Spegel:MirrorResolveTimeout"] = "00:00:05",
        };
        if (streaming)
        {
            settings["Spegel:MirrorVerifyBeforeSendBytes"] = "0";
            settings["Spegel:MirrorSpoolPath"] = string.Empty;
        }

        await using var registry = await ServiceHost.StartAsync("registry", settings, services => services.Replace(ServiceDescriptor.Singleton<Core.Content.ILocalContent>(new Core.Content.InMemoryLocalContent())));
        await PostEventAsync(resolver, new ContentAdvertised
        {
            Node = "node-rst", Address = peer.Address, Epoch = 1, Sequence = 1, Timestamp = DateTimeOffset.UtcNow, Digests = [blob.ToString()],
        });
        var before = await registry.ScrapeAsync();

        // The client sees a 404 (nothing sent yet, no other peer) or an aborted response (headers already sent):
        // never a complete 200, since only 1 KiB of 4 exists.
        string outcome;
        try
        {
            using var response = await registry.Client.GetAsync($"/v2/library/rst/blobs/{blob}?ns=docker.io");
            var body = await response.Content.ReadAsByteArrayAsync();
            outcome = $"{(int)response.StatusCode} with {body.Length} bytes";
            Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
        }
        catch (HttpRequestException ex)
        {
            outcome = "aborted: " + ex.Message;
        }

        var after = await Eventually.GetAsync(registry.ScrapeAsync, s => Delta(before, s, "spegel_registry_peer_failures_total") >= 1, "a peer failure counted");
        var kinds = string.Join(", ", after.Samples.Where(s => s.Name == "spegel_registry_peer_failures_total" && s.Value > 0).Select(s => $"{s.Labels.GetValueOrDefault("kind")}={s.Value}"));
        Assert.True(Delta(before, after, "spegel_registry_peer_failures_total", ("kind", "reset")) == 1, $"client: {outcome}; peer failures by kind: {kinds}");
    }

    /// <summary>
    /// The resolver's store fails (throws) or loses every compare-and-swap: the event is answered RETRY, so Dapr
    /// redelivers it, and counted once as <c>retried</c>.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ResolverEvents_StoreThrowsOrLosesEveryRace_AnswersRetryAndCountsRetried(bool throws)
    {
        await using var resolver = await ServiceHost.StartAsync(
            "resolver",
            new Dictionary<string, string?>(),
            services => services.Replace(ServiceDescriptor.Singleton<IKeyValueStore>(new UnluckyStore(throws))));
        var before = await resolver.ScrapeAsync();

        using var content = new ByteArrayContent(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes<ContentEvent>(Heartbeat("node-r", 1), ContentEventJsonContext.Default.ContentEvent));
        content.Headers.ContentType = new("application/json");
        using var response = await resolver.Client.PostAsync(ContentTopics.SubscriptionRoute, content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("{\"status\":\"RETRY\"}", await response.Content.ReadAsStringAsync());

        var after = await resolver.ScrapeAsync();
        Assert.Equal(1, Delta(before, after, "spegel_resolver_events_total", ("outcome", "retried")));
        Assert.Equal(0, Delta(before, after, "spegel_resolver_events_total", ("outcome", "applied")));
    }

    [Fact]
    public async Task IndexerGauges_ImagePulledAndDeleted_MoveUpAndDown()
    {
        await using var cluster = await TestCluster.StartAsync("node-a");
        var node = cluster["node-a"];
        var before = await Eventually.GetAsync(node.Indexer.ScrapeAsync, s => s.Has("spegel_indexer_images") && s.Sum("spegel_indexer_connected") == 1, "the indexer to follow containerd");
        Assert.Equal(0, before.Sum("spegel_indexer_images"));

        var first = new MemoryImage("docker.io/library/one:1");
        var second = new MemoryImage("ghcr.io/acme/two:2");
        node.Pull(first);
        node.Pull(second);
        // The worker updates its counts one after the other: wait for all of them.
        var pulled = await Eventually.GetAsync(
            node.Indexer.ScrapeAsync,
            s => s.Sum("spegel_indexer_images") == 2 && s.Sum("spegel_indexer_tags") == 2 && s.Sum("spegel_indexer_digests") == 6,
            "two images, two tags, six digests");
        Assert.Equal(2, Delta(before, pulled, "spegel_indexer_image_events_total", ("type", "create")));

        node.Watcher.Delete(first.Reference.ToString());
        var deleted = await Eventually.GetAsync(
            node.Indexer.ScrapeAsync,
            s => s.Sum("spegel_indexer_images") == 1 && s.Sum("spegel_indexer_tags") == 1 && s.Sum("spegel_indexer_digests") == 3,
            "one image, one tag, three digests left");
        Assert.Equal(1, Delta(pulled, deleted, "spegel_indexer_image_events_total", ("type", "delete")));
        var published = await Eventually.GetAsync(
            node.Indexer.ScrapeAsync,
            s => s.Sum("spegel_indexer_published_events_total", ("kind", "withdrawn")) >= 1 && s.Sum("spegel_indexer_published_events_total", ("kind", "heartbeat")) >= 1,
            "the withdrawal and a heartbeat published");
        Assert.True(published.Sum("spegel_indexer_published_events_total", ("kind", "advertised")) >= 2, published.Text);
        Assert.Equal(0, published.Sum("spegel_indexer_outbox_pending"));

        node.Watcher.Disconnect();
        await Eventually.GetAsync(node.Indexer.ScrapeAsync, s => s.Sum("spegel_indexer_containerd_reconnects_total") == 1, "a reconnect counted");
    }

    [Fact]
    public async Task ResolverCounters_EventsLookupsConflictsAndNodes_Move()
    {
        await using var resolver = await ServiceHost.StartAsync("resolver", new Dictionary<string, string?> { ["Spegel:Ui:RefreshInterval"] = "00:00:00.100" });
        var before = await resolver.ScrapeAsync();
        var layer = Digest.ComputeSha256([9, 9, 9]).ToString();

        await PostEventAsync(resolver, Heartbeat("node-x", 1));
        await PostEventAsync(resolver, Heartbeat("node-x", 1));
        await PostEventAsync(resolver, new ContentAdvertised { Node = "node-x", Address = "http://127.0.0.1:1", Epoch = 1, Sequence = 2, Timestamp = DateTimeOffset.UtcNow, Digests = [layer] });
        using (var bad = await resolver.Client.PostAsync("/events/content", new StringContent("{\"kind\":\"nonsense\"}", System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Contains("DROP", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Single((await resolver.Client.GetFromJsonAsync<Core.Routing.PeersResponse>($"/v1/peers?key={layer}"))!.Peers);
        Assert.Empty((await resolver.Client.GetFromJsonAsync<Core.Routing.PeersResponse>("/v1/peers?key=docker.io/library/none:1"))!.Peers);

        // A write with a stale ETag through the resolver's own store: one lost compare-and-swap.
        var store = resolver.Services.GetRequiredService<IKeyValueStore>();
        Assert.True(await store.TrySaveAsync("digest|race", "{}"u8.ToArray(), SaveCondition.IfNotExists));
        Assert.False(await store.TrySaveAsync("digest|race", "{}"u8.ToArray(), SaveCondition.IfNotExists));

        var after = await Eventually.GetAsync(resolver.ScrapeAsync, s => s.Sum("spegel_resolver_live_nodes") == 1, "the live node gauge");
        Assert.Equal(1, after.Sum("spegel_resolver_known_nodes"));
        Assert.Equal(1, Delta(before, after, "spegel_resolver_events_total", ("kind", "heartbeat"), ("outcome", "applied")));
        Assert.Equal(1, Delta(before, after, "spegel_resolver_events_total", ("kind", "heartbeat"), ("outcome", "unchanged")));
        Assert.Equal(1, Delta(before, after, "spegel_resolver_events_total", ("kind", "advertised"), ("outcome", "applied")));
        Assert.Equal(1, Delta(before, after, "spegel_resolver_events_total", ("outcome", "dropped")));
        Assert.Equal(1, Delta(before, after, "spegel_resolver_lookup_duration_seconds_count", ("kind", "digest"), ("result", "found")));
        Assert.Equal(1, Delta(before, after, "spegel_resolver_lookup_duration_seconds_count", ("kind", "tag"), ("result", "empty")));
        Assert.Equal(1, Delta(before, after, "spegel_resolver_cas_conflicts_total", ("record", "digest")));
    }

    [Fact]
    public async Task TwoHostsInOneProcess_KeepTheirOwnInstruments()
    {
        await using var first = await ServiceHost.StartAsync("resolver", new Dictionary<string, string?>());
        await using var second = await ServiceHost.StartAsync("resolver", new Dictionary<string, string?>());
        var before = await second.ScrapeAsync();

        await PostEventAsync(first, Heartbeat("node-y", 1));

        Assert.Equal(1, (await first.ScrapeAsync()).Sum("spegel_resolver_events_total", ("kind", "heartbeat"), ("outcome", "applied")));
        Assert.Equal(0, Delta(before, await second.ScrapeAsync(), "spegel_resolver_events_total"));
    }

    internal static async Task DriveTrafficAsync(TestCluster cluster)
    {
        var a = cluster["node-a"];
        var b = cluster["node-b"];
        var image = new MemoryImage("docker.io/library/traffic:1.0");
        a.Pull(image);
        await WaitForPeersAsync(cluster, image.LayerDigest.ToString(), 1);
        Assert.Equal(HttpStatusCode.OK, (await b.Registry.Client.GetAsync(image.ManifestPath)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await b.Registry.Client.GetAsync(image.BlobPath(image.LayerDigest))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await a.Registry.Client.GetAsync(image.BlobPath(image.ConfigDigest))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await b.Registry.Client.GetAsync(image.BlobPath(Digest.ComputeSha256([7])))).StatusCode);
        await Eventually.GetAsync(cluster.Resolver.ScrapeAsync, s => s.Sum("spegel_resolver_live_nodes") == cluster.Nodes.Count, "every node live");
    }

    internal static Task WaitForPeersAsync(TestCluster cluster, string key, int count) =>
        Eventually.GetAsync(
            async () => (await cluster.Resolver.Client.GetFromJsonAsync<Core.Routing.PeersResponse>($"/v1/peers?key={Uri.EscapeDataString(key)}"))!.Peers.Count,
            n => n >= count,
            $"{count} peer(s) for {key}");

    internal static async Task PostEventAsync(ServiceHost resolver, ContentEvent contentEvent)
    {
        using var content = new ByteArrayContent(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(contentEvent, ContentEventJsonContext.Default.ContentEvent));
        content.Headers.ContentType = new("application/json");
        using var response = await resolver.Client.PostAsync(ContentTopics.SubscriptionRoute, content);
        response.EnsureSuccessStatusCode();
    }

    internal static NodeHeartbeat Heartbeat(string node, long sequence) => new()
    {
        Node = node, Address = "http://127.0.0.1:1", Epoch = 1, Sequence = sequence, Timestamp = DateTimeOffset.UtcNow, Interval = TimeSpan.FromSeconds(3),
    };

    internal static int ClosedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static double Delta(Scrape before, Scrape after, string name, params (string Key, string Value)[] labels) =>
        after.Sum(name, labels) - before.Sum(name, labels);

    [GeneratedRegex("spegel_[a-z0-9_]+")]
    private static partial Regex MetricName();

    /// <summary>A store that reads as empty and either throws on every write or loses every conditional one.</summary>
    private sealed class UnluckyStore(bool throws) : IKeyValueStore
    {
        public ValueTask<KeyValueEntry?> GetAsync(string key, CancellationToken cancellationToken = default) => ValueTask.FromResult<KeyValueEntry?>(null);

        public ValueTask<IReadOnlyDictionary<string, KeyValueEntry>> GetManyAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult<IReadOnlyDictionary<string, KeyValueEntry>>(new Dictionary<string, KeyValueEntry>());

        public ValueTask<bool> TrySaveAsync(string key, ReadOnlyMemory<byte> value, SaveCondition condition, TimeSpan? timeToLive = null, CancellationToken cancellationToken = default) =>
            throws ? throw new InvalidOperationException("the state store is down") : ValueTask.FromResult(condition.Kind == SaveConditionKind.None);

        public ValueTask<bool> TryDeleteAsync(string key, string? etag, CancellationToken cancellationToken = default) =>
            throws ? throw new InvalidOperationException("the state store is down") : ValueTask.FromResult(etag is null);
    }
}
