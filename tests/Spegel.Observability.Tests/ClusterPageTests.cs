using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Spegel.Core.Events;
using Spegel.Core.Observability;
using Spegel.DaprDouble;
using Spegel.Observability.Tests.Support;
using Spegel.TestRig;

namespace Spegel.Observability.Tests;

/// <summary>The cluster page's data (resolver <c>/ui/api/…</c>, registries' <c>/v1/status</c>) and its routes through a registry.</summary>
public sealed class ClusterPageTests
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    [Fact]
    public async Task Overview_AfterPullAndMirroredPull_ListsNodesImageRecentRequestsAndSavings()
    {
        await using var cluster = await TestCluster.StartAsync("node-a", "node-b");
        var a = cluster["node-a"];
        var b = cluster["node-b"];
        var image = new MemoryImage("docker.io/library/nginx:1.27");
        a.Pull(image);
        await MetricsTests.WaitForPeersAsync(cluster, image.Reference.ToString(), 1);
        Assert.Equal(HttpStatusCode.OK, (await b.Registry.Client.GetAsync(image.ManifestPath)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await b.Registry.Client.GetAsync(image.BlobPath(image.LayerDigest))).StatusCode);

        var view = await Eventually.GetAsync(
            () => cluster.Resolver.Client.GetFromJsonAsync<JsonElement>("/ui/api/cluster"),
            v => v.GetProperty("totals").GetProperty("alive").GetInt32() == 2 && v.GetProperty("recent").GetArrayLength() >= 2,
            "both nodes alive and the mirrored requests listed");

        var nodes = view.GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("name").GetString()!);
        Assert.Equal(["node-a", "node-b"], nodes.Keys.Order());
        Assert.Equal(a.Registry.Address, nodes["node-a"].GetProperty("address").GetString());
        Assert.Equal(1, nodes["node-a"].GetProperty("images").GetInt32());
        Assert.Equal(3, nodes["node-a"].GetProperty("digests").GetInt32());
        Assert.True(nodes["node-b"].GetProperty("lastSeenAgoMs").GetInt64() < 5000);
        Assert.Equal(image.Layer.Length + image.Manifest.Length, nodes["node-a"].GetProperty("registry").GetProperty("bytesToPeers").GetInt64());

        var listed = Assert.Single(view.GetProperty("images").EnumerateArray());
        Assert.Equal("docker.io/library/nginx:1.27", listed.GetProperty("reference").GetString());
        Assert.Equal(image.ManifestDigest.ToString(), listed.GetProperty("digest").GetString());
        Assert.Equal("node-a", Assert.Single(listed.GetProperty("nodes").EnumerateArray()).GetString());

        var recent = view.GetProperty("recent").Deserialize<List<RecentRequest>>(Json)!;
        var blob = Assert.Single(recent, r => r.Key == image.LayerDigest.ToString());
        Assert.Equal(("node-b", "node-a", 200, image.Layer.Length), (blob.Node, blob.Source, blob.Status, blob.Bytes));

        var totals = view.GetProperty("totals");
        Assert.Equal(2, totals.GetProperty("hits").GetInt64());
        Assert.Equal(1.0, totals.GetProperty("hitRatio").GetDouble());
        Assert.Equal(image.Layer.Length + image.Manifest.Length, totals.GetProperty("bytesKeptOffUpstream").GetInt64());
    }

    [Fact]
    public async Task Search_ShortReference_ShowsEachNodesBindingAndTheHoldersOfTheNewestDigest()
    {
        await using var cluster = await TestCluster.StartAsync("node-a", "node-b");
        var old = new MemoryImage("docker.io/library/redis:7");
        var current = new MemoryImage("docker.io/library/redis:7");
        cluster["node-a"].Pull(old);
        await MetricsTests.WaitForPeersAsync(cluster, old.Reference.ToString(), 1);
        cluster["node-b"].Pull(current);
        await MetricsTests.WaitForPeersAsync(cluster, current.ManifestDigest.ToString(), 1);

        var found = await cluster.Resolver.Client.GetFromJsonAsync<JsonElement>("/ui/api/image?ref=redis:7");
        Assert.Equal("docker.io/library/redis:7", found.GetProperty("key").GetString());
        Assert.True(found.GetProperty("isTag").GetBoolean());
        Assert.Equal(current.ManifestDigest.ToString(), found.GetProperty("newestDigest").GetString());
        var bindings = found.GetProperty("bindings").EnumerateArray().ToDictionary(b => b.GetProperty("node").GetString()!);
        Assert.Equal(old.ManifestDigest.ToString(), bindings["node-a"].GetProperty("digest").GetString());
        Assert.False(bindings["node-a"].GetProperty("newest").GetBoolean());
        Assert.True(bindings["node-b"].GetProperty("newest").GetBoolean());
        Assert.Equal("node-b", Assert.Single(found.GetProperty("holders").EnumerateArray()).GetProperty("node").GetString());

        var byDigest = await cluster.Resolver.Client.GetFromJsonAsync<JsonElement>($"/ui/api/image?ref={old.LayerDigest}");
        Assert.False(byDigest.GetProperty("isTag").GetBoolean());
        Assert.Equal("node-a", Assert.Single(byDigest.GetProperty("holders").EnumerateArray()).GetProperty("node").GetString());

        Assert.Equal(HttpStatusCode.BadRequest, (await cluster.Resolver.Client.GetAsync("/ui/api/image?ref=sha256:nope")).StatusCode);
    }

    [Fact]
    public async Task Registry_ForwardsPageAndApiToResolver()
    {
        await using var cluster = await TestCluster.StartAsync("node-a");
        var registry = cluster["node-a"].Registry;

        using var redirect = await registry.Client.GetAsync("/ui");
        Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
        Assert.Equal("/ui/", redirect.Headers.Location?.ToString());

        using var page = await registry.Client.GetAsync("/ui/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<script src=\"app.js\"", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var script = await registry.Client.GetAsync("/ui/app.js");
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.Contains("api/cluster", await script.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var view = await Eventually.GetAsync(
            () => registry.Client.GetFromJsonAsync<JsonElement>("/ui/api/cluster"),
            v => v.GetProperty("nodes").GetArrayLength() == 1,
            "the node through the registry");
        Assert.Equal("node-a", view.GetProperty("nodes")[0].GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await registry.Client.GetAsync("/ui/nothing.txt")).StatusCode);
    }

    /// <summary>
    /// In a cluster the registry reaches the resolver through its sidecar (invoke by app-id): the registry runs as a
    /// process (the invoke handler reads the sidecar's address from its environment, as daprd's injector sets it).
    /// </summary>
    [Fact]
    public async Task Registry_DaprTransport_ForwardsPageThroughSidecarInvoke()
    {
        await using var backplane = new DaprBackplane();
        var resolverSidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions
        {
            AppId = "resolver",
            StateStores = [new StateStoreComponent(ContentTopics.DefaultStateStore) { KeyPrefix = "name" }],
            PubSubs = [new PubSubComponent(ContentTopics.DefaultPubSub)],
        });
        await using var resolver = await ServiceHost.StartAsync("resolver", new Dictionary<string, string?>
        {
            ["Spegel:Transport"] = "Dapr",
            ["DAPR_GRPC_ENDPOINT"] = resolverSidecar.GrpcEndpoint,
            ["DAPR_HTTP_ENDPOINT"] = resolverSidecar.HttpEndpoint,
            ["Spegel:Ui:CacheDuration"] = "00:00:00",
        });
        await resolverSidecar.AttachAppAsync(resolver.Address, TimeSpan.FromSeconds(10));
        await MetricsTests.PostEventAsync(resolver, MetricsTests.Heartbeat("node-d", 1));

        var registrySidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "registry" });
        await using var registry = await SpegelServiceProcess.StartHealthyAsync(new SpegelServiceOptions
        {
            Service = "registry",
            Name = "dapr-registry",
            Arguments = ["--Spegel:Transport=Dapr", "--Spegel:Node:Name=node-d", "--Spegel:PeerToken=0123456789abcdef-peer-token"],
            Environment = registrySidecar.Environment,
        });
        using var http = new HttpClient { BaseAddress = registry.BaseUri };

        using var page = await http.GetAsync("/ui/");
        Assert.True(page.StatusCode == HttpStatusCode.OK, registry.Tail());
        Assert.Contains("Spegel.Dapr", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var view = await Eventually.GetAsync(() => http.GetFromJsonAsync<JsonElement>("/ui/api/cluster"), v => v.GetProperty("nodes").GetArrayLength() == 1, "node-d listed");
        Assert.Equal("node-d", view.GetProperty("nodes")[0].GetProperty("name").GetString());
    }

    [Fact]
    public async Task SilentNode_PastNodeTimeout_IsShownNotAlive()
    {
        await using var cluster = await TestCluster.StartAsync(new Dictionary<string, string?> { ["Spegel:Resolver:NodeTimeout"] = "00:00:01" }, "node-a");
        await MetricsTests.PostEventAsync(cluster.Resolver, MetricsTests.Heartbeat("node-silent", 1));

        var view = await Eventually.GetAsync(
            () => cluster.Resolver.Client.GetFromJsonAsync<JsonElement>("/ui/api/cluster"),
            v => v.GetProperty("nodes").EnumerateArray().Any(n => n.GetProperty("name").GetString() == "node-silent" && !n.GetProperty("alive").GetBoolean()),
            "node-silent shown dead");
        var silent = view.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("name").GetString() == "node-silent");
        Assert.Equal("node not alive", silent.GetProperty("registryError").GetString());
        Assert.True(view.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("name").GetString() == "node-a").GetProperty("alive").GetBoolean());
        Assert.Equal(1, view.GetProperty("totals").GetProperty("alive").GetInt32());
    }

    [Fact]
    public async Task RegistryStatus_RecentRing_KeepsNewestFirstAndIsBounded()
    {
        await using var cluster = await TestCluster.StartAsync("node-a");
        var registry = cluster["node-a"].Registry;
        var image = new MemoryImage("docker.io/library/ring:1");
        cluster["node-a"].Pull(image);
        for (var i = 0; i < 105; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await registry.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, image.BlobPath(image.LayerDigest)))).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await registry.Client.GetAsync(image.BlobPath(image.ConfigDigest))).StatusCode);
        var status = (await registry.Client.GetFromJsonAsync<RegistryStatus>("/v1/status", Json))!;
        Assert.Equal("node-a", status.Node);
        Assert.Equal(100, status.Recent.Count);
        Assert.Equal(image.ConfigDigest.ToString(), status.Recent[0].Key);
        Assert.Equal(("GET", "local", 0L + image.Config.Length), (status.Recent[0].Method, status.Recent[0].Source, status.Recent[0].Bytes));
        Assert.Equal(0, status.Recent[1].Bytes);
        Assert.Equal(106, status.Totals.Local);
        Assert.Equal(image.Config.Length, status.Totals.BytesLocal);
    }
}
