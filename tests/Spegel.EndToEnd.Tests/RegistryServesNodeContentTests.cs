using System.Net;
using Spegel.Core;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.EndToEnd.Tests.Support;
using Spegel.TestRig;

namespace Spegel.EndToEnd.Tests;

/// <summary>
/// One node A (containerd + registry, no resolver) that pulled the four small test images straight from the
/// upstream; the upstream is stopped once they are in, so everything the tests see comes from A.
/// Read-only for the tests: they start their own containerds to pull into.
/// </summary>
public sealed class PulledNodeFixture : IAsyncLifetime
{
    private readonly Dictionary<TestImageKind, TestImage> _images = [];

    public UpstreamRegistry Upstream { get; private set; } = null!;

    public LocalCluster Cluster { get; private set; } = null!;

    public ClusterNode A => Cluster.Node(1);

    public TestImage this[TestImageKind kind] => _images[kind];

    public async Task InitializeAsync()
    {
        Upstream = await UpstreamRegistry.StartAsync();
        var building = new TestImages(Upstream).SmallImagesAsync();
        Cluster = await LocalCluster.StartAsync(Upstream, new LocalClusterOptions { Nodes = 1, Indexers = false, Resolver = false });
        foreach (var image in await building)
        {
            _images[Kind(image)] = image;
        }

        foreach (var pull in await Task.WhenAll(_images.Values.Select(i => A.PullFromUpstreamAsync(i.Reference))))
        {
            pull.EnsureSuccess();
        }

        await Upstream.StopAsync();
    }

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }

        if (Upstream is not null)
        {
            await Upstream.DisposeAsync();
        }
    }

    private static TestImageKind Kind(TestImage image) =>
        Enum.GetValues<TestImageKind>().First(k => image.Repository.StartsWith($"rig/{k.ToString().ToLowerInvariant()}-", StringComparison.Ordinal));
}

/// <summary>Issue 3: the registry serves what its node's containerd holds, byte-exact, to any client and to containerd.</summary>
public sealed class RegistryServesNodeContentTests(PulledNodeFixture fixture) : IClassFixture<PulledNodeFixture>
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = DecompressionMethods.None })
    {
        Timeout = TimeSpan.FromSeconds(10),
    };

    public static TheoryData<TestImageKind> SmallKinds =>
        new(TestImageKind.SingleLayer, TestImageKind.MultiLayer, TestImageKind.MultiPlatform, TestImageKind.DockerSchema2);

    [Theory]
    [MemberData(nameof(SmallKinds))]
    public async Task Get_EveryBlobAndManifestOfPulledImage_BytesHashToDigestWithRegistryHeaders(TestImageKind kind)
    {
        var image = fixture[kind];
        Assert.False(fixture.Upstream.IsRunning);

        foreach (var blob in image.NativeBlobs)
        {
            var isManifest = MediaTypes.IsManifest(blob.MediaType);
            var path = $"/v2/{image.Repository}/{(isManifest ? "manifests" : "blobs")}/{blob.Digest}?ns={image.Registry}";

            using var get = await Http.GetAsync(new Uri(fixture.A.Registry.BaseUri, path));
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            var body = await get.Content.ReadAsByteArrayAsync();
            Assert.Equal(blob.Digest, Digest.ComputeSha256(body));
            Assert.Equal(blob.Size, body.Length);
            Assert.Equal(isManifest ? blob.MediaType : MediaTypes.OctetStream, get.Content.Headers.ContentType?.MediaType);
            Assert.Equal(blob.Size, get.Content.Headers.ContentLength);
            Assert.Equal(blob.Digest.ToString(), Header(get, "Docker-Content-Digest"));
            if (!isManifest)
            {
                Assert.Equal("bytes", Assert.Single(get.Headers.AcceptRanges));
            }

            // HEAD: the same headers, no body.
            using var head = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri(fixture.A.Registry.BaseUri, path)));
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal(get.Content.Headers.ContentType?.MediaType, head.Content.Headers.ContentType?.MediaType);
            Assert.Equal(blob.Size, head.Content.Headers.ContentLength);
            Assert.Equal(blob.Digest.ToString(), Header(head, "Docker-Content-Digest"));
            Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        }

        // HEAD by tag names the digest whose GET serves the root's bytes.
        using var byTag = await Http.SendAsync(new HttpRequestMessage(
            HttpMethod.Head, new Uri(fixture.A.Registry.BaseUri, $"/v2/{image.Repository}/manifests/{image.Tag}?ns={image.Registry}")));
        Assert.Equal(HttpStatusCode.OK, byTag.StatusCode);
        Assert.Equal(image.Digest.ToString(), Header(byTag, "Docker-Content-Digest"));
        Assert.Equal(image.Root.MediaType, byTag.Content.Headers.ContentType?.MediaType);
        Assert.Equal(image.Root.Size, byTag.Content.Headers.ContentLength);
        using var byDigest = await Http.GetAsync(new Uri(fixture.A.Registry.BaseUri, $"/v2/{image.Repository}/manifests/{Header(byTag, "Docker-Content-Digest")}?ns={image.Registry}"));
        Assert.Equal(HttpStatusCode.OK, byDigest.StatusCode);
        Assert.Equal(image.Digest, Digest.ComputeSha256(await byDigest.Content.ReadAsByteArrayAsync()));
        Assert.Equal(byTag.Content.Headers.ContentType?.MediaType, byDigest.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [MemberData(nameof(SmallKinds))]
    public async Task Pull_ThroughPeerRegistryWithUpstreamStopped_ByTagAndByDigest_ContentEqualsPeer(TestImageKind kind)
    {
        var image = fixture[kind];
        Assert.False(fixture.Upstream.IsRunning);
        Assert.False(await Ports.IsListeningAsync(fixture.Upstream.Port));
        var startB = ContainerdInstance.StartAsync();
        var startC = ContainerdInstance.StartAsync();
        await using var b = await startB;
        await using var c = await startC;

        // As on a kubelet node that mirrors through A: A's registry first, then the (stopped) upstream.
        var hosts = Path.Combine(b.Directory, "certs.d");
        HostsDir.Write(hosts, image.Registry, $"http://{image.Registry}", fixture.A.RegistryUrl);

        var byTag = b.PullAsync(image.Reference, hosts);
        var byDigest = c.PullAsync(image.DigestReference, hosts);
        (await byTag).EnsureSuccess();
        (await byDigest).EnsureSuccess();

        // Both hold exactly what A holds (A's own files are the reference: same digests, sizes and bytes).
        await Content.AssertHoldsAsync(fixture.A.Containerd, image.NativeBlobs, "node A");
        await Content.AssertHoldsAsync(b, image.NativeBlobs, "B (pulled by tag)");
        await Content.AssertHoldsAsync(c, image.NativeBlobs, "C (pulled by digest)");
        Assert.Contains(image.Reference, await b.ListImagesAsync());
        Assert.Contains(image.DigestReference, await c.ListImagesAsync());
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.Single()
        : response.Content.Headers.TryGetValues(name, out var contentValues) ? contentValues.Single()
        : null;
}

/// <summary>Issue 3: <c>/readyz</c> follows containerd.</summary>
public sealed class RegistryReadinessTests
{
    [Fact]
    public async Task Readyz_ContainerdKilledThenRestarted_NotReadyWithinSecondsThenReadyAgain()
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 1, Indexers = false, Resolver = false });
        var node = cluster.Node(1);
        await node.Registry.WaitForReadyAsync(TimeSpan.FromSeconds(10));

        await node.Containerd.KillAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Poll.WaitUntilAsync(
            async ct => await node.Registry.ProbeAsync("/readyz", ct) is { } status && status != HttpStatusCode.OK,
            TimeSpan.FromSeconds(3),
            "/readyz to stop answering 200 after containerd was killed");
        var notReady = clock.Elapsed;

        await node.Containerd.RestartAsync();
        clock.Restart();
        await node.Registry.WaitForReadyAsync(TimeSpan.FromSeconds(10));

        Assert.True(node.Registry.IsRunning, "the registry must survive its containerd going away");
        Assert.True(notReady < TimeSpan.FromSeconds(3), $"not ready after {notReady.TotalMilliseconds:0} ms");
    }
}
