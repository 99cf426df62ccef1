using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Http;
using Spegel.Core.Content;

namespace Spegel.Registry.Tests;

/// <summary>
/// Manifests through the mirror are fetched whole and verified, also for a HEAD, and kept briefly by digest: the
/// GET by digest containerd sends after its HEAD by tag needs no second lookup and no second peer trip.
/// </summary>
public sealed partial class MirrorTests
{
    private async Task<(TinyServer Peer, ConcurrentQueue<string> Seen)> ManifestPeer(TestContent content, bool lie = false)
    {
        var seen = new ConcurrentQueue<string>();
        var peer = await FakePeer(async ctx =>
        {
            seen.Enqueue(ctx.Request.Method + " " + ctx.Request.Path);
            var body = (byte[])content.Index.Clone();
            if (lie)
            {
                body[^2] ^= 0x01;
            }

            ctx.Response.ContentType = "application/vnd.oci.image.index.v1+json";
            ctx.Response.ContentLength = body.Length;
            ctx.Response.Headers["Docker-Content-Digest"] = content.IndexDigest.ToString();
            if (!HttpMethods.IsHead(ctx.Request.Method))
            {
                await ctx.Response.Body.WriteAsync(body);
            }
        });
        return (peer, seen);
    }

    [Fact]
    public async Task Manifest_HeadByTag_ThenGetByDigest_IsServedFromTheVerifiedFetchWithoutSecondLookupOrPeerTrip()
    {
        var content = new TestContent();
        var (peer, seen) = await ManifestPeer(content);
        var b = await Node("b", new InMemoryLocalContent());
        Answer("docker.io/library/app:1.0", ("a", peer.Url));
        Answer(content.IndexDigest.ToString(), ("a", peer.Url));

        using var head = await b.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/library/app/manifests/1.0?ns=docker.io"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(content.IndexDigest.ToString(), Assert.Single(head.Headers.GetValues("Docker-Content-Digest")));
        Assert.Equal(content.Index.Length, head.Content.Headers.ContentLength);
        Assert.Equal(["GET /v2/library/app/manifests/1.0"], seen);

        using var get = await b.Client.GetAsync(new Uri($"/v2/library/app/manifests/{content.IndexDigest}?ns=docker.io", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(content.Index, await get.Content.ReadAsByteArrayAsync());
        Assert.Equal("application/vnd.oci.image.index.v1+json", get.Content.Headers.ContentType!.MediaType);
        Assert.Single(seen);
        Assert.DoesNotContain(content.IndexDigest.ToString(), resolverCalls);
    }

    [Fact]
    public async Task Manifest_HeadByTag_PeerWhoseBytesDoNotMatchItsDigest_IsNotBelieved()
    {
        var content = new TestContent();
        var (liar, _) = await ManifestPeer(content, lie: true);
        var b = await Node("b", new InMemoryLocalContent());
        Answer("docker.io/library/app:1.0", ("liar", liar.Url));

        // A HEAD answered from headers alone would have passed this digest on; verified, it is a miss.
        using var head = await b.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/library/app/manifests/1.0?ns=docker.io"));
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);

        // And nothing wrong was kept for the digest it named.
        Answer(content.IndexDigest.ToString());
        using var get = await b.Client.GetAsync(new Uri($"/v2/library/app/manifests/{content.IndexDigest}?ns=docker.io", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public async Task Manifest_CacheTtlZero_GetByDigestAsksAgain()
    {
        var content = new TestContent();
        var (peer, seen) = await ManifestPeer(content);
        var b = await RegistryApp.StartAsync(new InMemoryLocalContent(), "--Spegel:Node:Name=b", $"--Spegel:Resolver:Url={resolver.Url}", "--Spegel:MirrorResolveTimeout=00:00:05", "--Spegel:MirrorManifestCacheTtl=00:00:00");
        owned.Add(b);
        Answer("docker.io/library/app:1.0", ("a", peer.Url));
        Answer(content.IndexDigest.ToString(), ("a", peer.Url));

        using var head = await b.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/library/app/manifests/1.0?ns=docker.io"));
        using var get = await b.Client.GetAsync(new Uri($"/v2/library/app/manifests/{content.IndexDigest}?ns=docker.io", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(2, seen.Count);
        Assert.Contains(content.IndexDigest.ToString(), resolverCalls);
    }
}
