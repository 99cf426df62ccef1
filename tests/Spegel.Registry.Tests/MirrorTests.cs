using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Spegel.Core.Content;
using Spegel.Core.Routing;
using Xunit.Abstractions;

namespace Spegel.Registry.Tests;

/// <summary>
/// The mirror path with real HTTP between registries: node B (empty) asks a fake resolver, then peers that are real
/// registry instances over in-memory content, or fake peers that lie, stall or die mid-body.
/// </summary>
public sealed partial class MirrorTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> owned = [];
    private readonly ConcurrentDictionary<string, PeersResponse> answers = new();
    private readonly ConcurrentQueue<string> resolverCalls = new();
    private TinyServer resolver = null!;

    public async Task InitializeAsync()
    {
        resolver = await TinyServer.StartAsync(app => app.MapGet(PeersRoute.Path, (string key) =>
        {
            resolverCalls.Enqueue(key);
            return Results.Json(answers.TryGetValue(key, out var a) ? a : new PeersResponse(key, null, []), PeersJsonContext.Default.PeersResponse);
        }));
        owned.Add(resolver);
    }

    public async Task DisposeAsync()
    {
        foreach (var o in Enumerable.Reverse(owned))
        {
            await o.DisposeAsync();
        }
    }

    private async Task<RegistryApp> Node(string name, InMemoryLocalContent content)
    {
        // A generous budget: these tests are about behaviour, and a cold first request on a loaded machine can take a second.
        var app = await RegistryApp.StartAsync(content, $"--Spegel:Node:Name={name}", $"--Spegel:Resolver:Url={resolver.Url}", "--Spegel:MirrorResolveTimeout=00:00:05");
        owned.Add(app);
        return app;
    }

    private async Task<TinyServer> FakePeer(RequestDelegate handler)
    {
        var server = await TinyServer.StartAsync(app => app.Run(handler));
        owned.Add(server);
        return server;
    }

    private void Answer(string key, params (string Node, string Url)[] peers) =>
        answers[key] = new PeersResponse(key, null, peers.Select(p => new Peer(p.Node, p.Url)).ToList());

    private static string Sha(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));

    [Fact]
    public async Task Blob_MissLocally_StreamsFromPeerWithItsHeaders()
    {
        var content = new TestContent();
        var a = await Node("a", content.Store);
        var b = await Node("b", new InMemoryLocalContent());
        Answer(content.LayerDigest.ToString(), ("a", a.Url.ToString()));

        using var response = await b.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.LayerDigest}?ns=docker.io", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        Assert.Equal(content.Layer.Length, response.Content.Headers.ContentLength);
        Assert.Equal(content.LayerDigest.ToString(), Assert.Single(response.Headers.GetValues("Docker-Content-Digest")));
    }

    [Fact]
    public async Task Manifest_HeadByTagThenGetByDigest_AgreeThroughPeer()
    {
        var content = new TestContent();
        var a = await Node("a", content.Store);
        var b = await Node("b", new InMemoryLocalContent());
        Answer("docker.io/library/app:1.0", ("a", a.Url.ToString()));
        Answer(content.IndexDigest.ToString(), ("a", a.Url.ToString()));

        using var head = await b.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/library/app/manifests/1.0?ns=docker.io"));
        var digest = Assert.Single(head.Headers.GetValues("Docker-Content-Digest"));
        using var get = await b.Client.GetAsync(new Uri($"/v2/library/app/manifests/{digest}?ns=docker.io", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(content.IndexDigest.ToString(), digest);
        Assert.Equal("application/vnd.oci.image.index.v1+json", get.Content.Headers.ContentType!.MediaType);
        Assert.Equal(digest, Sha(await get.Content.ReadAsByteArrayAsync()));
        Assert.Equal(head.Content.Headers.ContentLength, get.Content.Headers.ContentLength);
    }

    [Fact]
    public async Task Blob_ClientRange_IsPassedToPeer()
    {
        var content = new TestContent();
        var a = await Node("a", content.Store);
        var b = await Node("b", new InMemoryLocalContent());
        Answer(content.LayerDigest.ToString(), ("a", a.Url.ToString()));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/library/app/blobs/{content.LayerDigest}");
        request.Headers.Range = new RangeHeaderValue(100, 199);

        using var response = await b.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal($"bytes 100-199/{content.Layer.Length}", response.Content.Headers.ContentRange!.ToString());
        Assert.Equal(content.Layer[100..200], await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Blob_PeerDiesMidBody_ResumesOnAnotherPeerFromSameOffset()
    {
        var content = new TestContent();
        var honest = await Node("honest", content.Store);
        var dying = await FakePeer(async ctx =>
        {
            ctx.Response.ContentLength = content.Layer.Length;
            ctx.Response.ContentType = "application/octet-stream";
            await ctx.Response.Body.WriteAsync(content.Layer.AsMemory(0, content.Layer.Length / 3));
            await ctx.Response.Body.FlushAsync();
            ctx.Abort();
        });
        var b = await Node("b", new InMemoryLocalContent());
        Answer(content.LayerDigest.ToString(), ("dying", dying.Url), ("honest", honest.Url.ToString()));

        using var response = await b.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task Blob_LyingPeer_ResponseNeverCompletesAndNextRequestUsesHonestPeer()
    {
        var content = new TestContent();
        var honest = await Node("honest", content.Store);
        var lies = 0;
        var liar = await FakePeer(async ctx =>
        {
            Interlocked.Increment(ref lies);
            var wrong = (byte[])content.Layer.Clone();
            wrong[^1] ^= 0xff;
            ctx.Response.ContentLength = wrong.Length;
            await ctx.Response.Body.WriteAsync(wrong);
        });
        var b = await Node("b", new InMemoryLocalContent());
        Answer(content.LayerDigest.ToString(), ("liar", liar.Url), ("honest", honest.Url.ToString()));
        var uri = new Uri($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative);

        // The wrong bytes are never completed: either reading the body fails, or (when the honest peer won the
        // hedge because the liar was slow on a loaded machine) the body is the right one. Never a full wrong blob.
        try
        {
            using var first = await b.Client.GetAsync(uri);
            Assert.Equal(content.LayerDigest.ToString(), Sha(await first.Content.ReadAsByteArrayAsync()));
        }
        catch (HttpRequestException)
        {
            // Aborted before the last chunk: what containerd sees as a broken transfer.
        }

        using var second = await b.Client.GetAsync(uri);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await second.Content.ReadAsByteArrayAsync()));
        Assert.True(lies <= 1, $"the liar was asked {lies} times: after a lie it must be tried last");
    }

    [Fact]
    public async Task Manifest_LyingPeer_IsSkippedWithinTheSameRequest()
    {
        var content = new TestContent();
        var honest = await Node("honest", content.Store);
        var liar = await FakePeer(async ctx =>
        {
            ctx.Response.ContentType = "application/vnd.oci.image.index.v1+json";
            ctx.Response.Headers["Docker-Content-Digest"] = content.IndexDigest.ToString();
            await ctx.Response.WriteAsync("{\"schemaVersion\":2,\"manifests\":[]}");
        });
        var b = await Node("b", new InMemoryLocalContent());
        Answer(content.IndexDigest.ToString(), ("liar", liar.Url), ("honest", honest.Url.ToString()));

        using var response = await b.Client.GetAsync(new Uri($"/v2/library/app/manifests/{content.IndexDigest}", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.IndexDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task Blob_StalledPeerFirst_HedgesToNextPeerQuickly()
    {
        var content = new TestContent();
        var honest = await Node("honest", content.Store);
        var stalled = await FakePeer(async ctx => await Task.Delay(Timeout.Infinite, ctx.RequestAborted));
        var b = await Node("b", new InMemoryLocalContent());
        Answer(content.LayerDigest.ToString(), ("stalled", stalled.Url), ("honest", honest.Url.ToString()));

        var clock = Stopwatch.StartNew();
        using var response = await b.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative));
        var body = await response.Content.ReadAsByteArrayAsync();
        clock.Stop();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(body));
        output.WriteLine($"stalled first peer: blob served in {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Blob_StalledPeerLostAHedge_IsTriedLastAfterwards()
    {
        var content = new TestContent();
        var honest = await Node("honest", content.Store);
        var asked = 0;
        var stalled = await FakePeer(async ctx =>
        {
            Interlocked.Increment(ref asked);
            await Task.Delay(Timeout.Infinite, ctx.RequestAborted);
        });
        var b = await Node("b", new InMemoryLocalContent());
        Answer(content.LayerDigest.ToString(), ("stalled", stalled.Url), ("honest", honest.Url.ToString()));

        for (var i = 0; i < 5; i++)
        {
            using var response = await b.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative));
            Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        }

        // Asked first once; afterwards the honest peer answers before the hedge delay would start the stalled one.
        Assert.True(asked <= 2, $"the stalled peer was asked {asked} times in 5 requests");
    }

    [Fact]
    public async Task Blob_PeerStallsMidBody_ResumesAfterReadTimeout()
    {
        var content = new TestContent();
        var honest = await Node("honest", content.Store);
        var staller = await FakePeer(async ctx =>
        {
            ctx.Response.ContentLength = content.Layer.Length;
            await ctx.Response.Body.WriteAsync(content.Layer.AsMemory(0, 4096));
            await ctx.Response.Body.FlushAsync();
            await Task.Delay(Timeout.Infinite, ctx.RequestAborted);
        });
        var b = await RegistryApp.StartAsync(new InMemoryLocalContent(), "--Spegel:Node:Name=b", $"--Spegel:Resolver:Url={resolver.Url}", "--Spegel:MirrorReadTimeout=00:00:00.300");
        owned.Add(b);
        Answer(content.LayerDigest.ToString(), ("staller", staller.Url), ("honest", honest.Url.ToString()));

        using var response = await b.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative));

        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task NothingHeldAnywhere_Answers404WithMissLineAndAttempts()
    {
        var content = new TestContent();
        var empty = await Node("empty", new InMemoryLocalContent());
        var b = await Node("b", new InMemoryLocalContent());
        Answer(content.LayerDigest.ToString(), ("empty", empty.Url.ToString()));

        using var response = await b.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative));
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = doc.RootElement.GetProperty("errors")[0];

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("BLOB_UNKNOWN", error.GetProperty("code").GetString());
        Assert.Equal($"mirror with image component {content.LayerDigest} could not be found", error.GetProperty("message").GetString());
        Assert.Equal("empty", error.GetProperty("detail").GetProperty("attempts")[0].GetProperty("node").GetString());
    }

    [Fact]
    public async Task ResolverDown_Answers404Fast()
    {
        var b = await RegistryApp.StartAsync(new InMemoryLocalContent(), "--Spegel:Node:Name=b", "--Spegel:Resolver:Url=http://127.0.0.1:9");
        owned.Add(b);
        var digest = new TestContent().LayerDigest;
        using var warm = await b.Client.GetAsync(new Uri($"/v2/library/app/blobs/sha256:{new string('1', 64)}", UriKind.Relative));

        var clock = Stopwatch.StartNew();
        using var response = await b.Client.GetAsync(new Uri($"/v2/library/app/blobs/{digest}", UriKind.Relative));
        clock.Stop();

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        output.WriteLine($"resolver down: 404 in {clock.Elapsed.TotalMilliseconds:0.0} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task PeerRequest_MissLocally_NeverForwards()
    {
        var content = new TestContent();
        var a = await Node("a", content.Store);
        var b = await Node("b", new InMemoryLocalContent());
        Answer(content.LayerDigest.ToString(), ("a", a.Url.ToString()));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/library/app/blobs/{content.LayerDigest}");
        request.Headers.Add("X-Spegel-Mirrored", "true");

        using var response = await b.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.DoesNotContain(content.LayerDigest.ToString(), resolverCalls);
    }

    [Fact]
    public async Task Manifest_PeerWithStaleTag_IsNotUsed()
    {
        var content = new TestContent();
        var stale = await Node("stale", content.Store);
        var b = await Node("b", new InMemoryLocalContent());
        answers["docker.io/library/app:1.0"] = new PeersResponse("docker.io/library/app:1.0", "sha256:" + new string('e', 64), [new Peer("stale", stale.Url.ToString())]);

        using var response = await b.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/library/app/manifests/1.0?ns=docker.io"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
