using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Spegel.Core;
using Spegel.Core.Routing;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.Aot.Tests;

/// <summary>
/// The registry's Native AOT binary does what the JIT build does — serves a node's content to containerd, mirrors
/// from a peer it finds through the resolver, binds and validates its options — in a fraction of the memory.
/// </summary>
public sealed class AotRegistryTests(AotRegistryFixture fixture, ITestOutputHelper output) : IClassFixture<AotRegistryFixture>
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = DecompressionMethods.None })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    [Fact]
    public async Task Pull_ThroughTheAotRegistry_WithTheUpstreamStopped_GetsNodeAsContent()
    {
        var image = fixture.MultiLayer;
        await using var b = await ContainerdInstance.StartAsync();
        var hosts = Path.Combine(b.Directory, "certs.d");
        HostsDir.Write(hosts, image.Registry, $"http://{image.Registry}", fixture.RegistryA.Url);
        await fixture.Upstream.StopAsync();
        try
        {
            (await b.PullAsync(image.Reference, hosts)).EnsureSuccess();
        }
        finally
        {
            await fixture.Upstream.RestartAsync();
        }

        foreach (var blob in image.NativeBlobs)
        {
            var copy = await File.ReadAllBytesAsync(b.BlobPath(blob.Digest));
            Assert.Equal(blob.Digest, Digest.ComputeSha256(copy));
        }

        Assert.Contains(fixture.RegistryA.Lines, l => l.Contains("\"handler\":\"blob\"", StringComparison.Ordinal) && l.Contains("\"status\":200", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Mirror_AnEmptyNodesAotRegistry_ServesAPeersBlobAndTagFoundThroughTheResolver()
    {
        var image = fixture.SingleLayer;
        await using var resolver = await FakeResolverAsync(new Peer("node-a", fixture.RegistryA.Url), image.Digest.ToString());
        await using var c = await ContainerdInstance.StartAsync();
        await using var registryC = await fixture.StartRegistryAsync(c, "node-c", $"--Spegel:Resolver:Url={resolver.Urls.First()}");

        var layer = image.NativeBlobs[^1];
        using var blob = await Http.GetAsync(new Uri(registryC.BaseUri, $"/v2/{image.Repository}/blobs/{layer.Digest}?ns={image.Registry}"));
        Assert.Equal(HttpStatusCode.OK, blob.StatusCode);
        Assert.Equal(layer.Digest, Digest.ComputeSha256(await blob.Content.ReadAsByteArrayAsync()));

        using var head = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri(registryC.BaseUri, $"/v2/{image.Repository}/manifests/{image.Tag}?ns={image.Registry}")));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(image.Digest.ToString(), head.Headers.GetValues("Docker-Content-Digest").Single());

        // A miss is the OCI error body, written by the source-generated JSON the AOT build keeps.
        using var miss = await Http.GetAsync(new Uri(registryC.BaseUri, $"/v2/{image.Repository}/blobs/sha256:{new string('0', 64)}?ns={image.Registry}"));
        Assert.Equal(HttpStatusCode.NotFound, miss.StatusCode);
        using var error = JsonDocument.Parse(await miss.Content.ReadAsStringAsync());
        Assert.Equal("BLOB_UNKNOWN", error.RootElement.GetProperty("errors")[0].GetProperty("code").GetString());

        Assert.Contains(registryC.Lines, l => l.Contains("\"source\":\"node-a\"", StringComparison.Ordinal) && l.Contains(layer.Digest.ToString(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Options_UnderAot_BindEveryKindOfValue_AndReportEveryBadOne()
    {
        // Arrays, TimeSpans, numbers and booleans bind (a filtered registry then gets its 404 at once)...
        var image = fixture.SingleLayer;
        await using (var filtered = await fixture.StartRegistryAsync(
            fixture.A, "node-f", "--Spegel:MirroredRegistries:0=example.com", "--Spegel:MirroredRegistries:1=quay.io", "--Spegel:MirrorResolveTimeout=00:00:03", "--Spegel:MirrorResolveRetries=2", "--Spegel:ResolveTags=true"))
        {
            using var refused = await Http.GetAsync(new Uri(filtered.BaseUri, $"/v2/{image.Repository}/manifests/{image.Tag}?ns={image.Registry}"));
            Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
            using var served = await Http.GetAsync(new Uri(fixture.RegistryA.BaseUri, $"/v2/{image.Repository}/manifests/{image.Tag}?ns={image.Registry}"));
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        // ...and bad values are each an "invalid configuration" line, exit code 2.
        await using var bad = SpegelServiceProcess.Start(AotRegistryFixture.Options(
            fixture.A, "node-bad", fixture.Executable, "--Spegel:MirrorResolveRetries=99", "--Spegel:RegistryFilters:0=(", "--Serilog:MinimumLevel:Default=Loud"));
        Assert.Equal(2, await bad.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var errors = bad.Lines
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(l => l.GetProperty("msg").GetString() == "invalid configuration")
            .Select(l => l.GetProperty("error").GetString()!)
            .ToList();
        output.WriteLine(string.Join('\n', errors));
        Assert.Contains(errors, e => e.StartsWith("Spegel:MirrorResolveRetries", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Spegel:RegistryFilters", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Serilog:MinimumLevel:Default", StringComparison.Ordinal));
    }

    [Fact]
    public async Task IdleRss_OfTheAotRegistry_IsWithinTheTargetAndBelowTheJitBuilds()
    {
        // Both builds serve the same requests, then idle; RSS is read from /proc after the same pause.
        var image = fixture.MultiLayer;
        await using var jit = await SpegelServiceProcess.StartHealthyAsync(AotRegistryFixture.Options(fixture.A, "node-a", executable: null));
        var aotRss = await IdleRssAfterRequestsAsync(fixture.RegistryA, image);
        var jitRss = await IdleRssAfterRequestsAsync(jit, image);

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"idle RSS after serving {image.NativeBlobs.Count} blobs twice: AOT {aotRss / 1048576.0:0.0} MiB, JIT {jitRss / 1048576.0:0.0} MiB ({(double)aotRss / jitRss:0.00}x)"));
        Assert.True(aotRss <= 60L * 1024 * 1024, $"the AOT registry idles at {aotRss / 1048576.0:0.0} MiB, above the 60 MiB target");
        Assert.True(aotRss < jitRss, $"AOT {aotRss} bytes is not below JIT {jitRss} bytes");
    }

    private static async Task<long> IdleRssAfterRequestsAsync(SpegelServiceProcess registry, TestImage image)
    {
        for (var round = 0; round < 2; round++)
        {
            foreach (var blob in image.NativeBlobs)
            {
                var kind = MediaTypes.IsManifest(blob.MediaType) ? "manifests" : "blobs";
                using var response = await Http.GetAsync(new Uri(registry.BaseUri, $"/v2/{image.Repository}/{kind}/{blob.Digest}?ns={image.Registry}"));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                _ = await response.Content.ReadAsByteArrayAsync();
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(3));
        var status = await File.ReadAllLinesAsync($"/proc/{registry.Pid}/status");
        var kb = status.Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>A resolver that names <paramref name="peer"/> for every key (and <paramref name="tagDigest"/> for tags).</summary>
    private static async Task<WebApplication> FakeResolverAsync(Peer peer, string tagDigest)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapGet(PeersRoute.Path, (string key) => Results.Json(
            new PeersResponse(key, key.StartsWith("sha256:", StringComparison.Ordinal) ? null : tagDigest, [peer]),
            PeersJsonContext.Default.PeersResponse));
        await app.StartAsync();
        return app;
    }
}
