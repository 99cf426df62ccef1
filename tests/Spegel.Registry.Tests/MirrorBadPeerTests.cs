using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Spegel.Core;
using Spegel.Core.Content;
using Spegel.Core.Routing;
using Spegel.Registry.Mirror;
using Xunit.Abstractions;
using Spegel.TestRig;

namespace Spegel.Registry.Tests;

/// <summary>
/// Peers that break HTTP framing or send what is not a manifest, on a raw socket: the client of our registry gets
/// exactly the right bytes, or a clean 404 (or, past the verify threshold, an abort) — never extra bytes, never a
/// completed response with the wrong digest — and a log line says what the peer did.
/// </summary>
public sealed class MirrorBadPeerTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private readonly List<IAsyncDisposable> owned = [];
    private readonly ConcurrentDictionary<string, PeersResponse> answers = new();
    private readonly TestContent content = new();
    private readonly CapturedLogs logs = new();
    private TinyServer resolver = null!;

    public async Task InitializeAsync()
    {
        resolver = await TinyServer.StartAsync(app => app.MapGet(PeersRoute.Path, (string key) =>
            Results.Json(answers.TryGetValue(key, out var a) ? a : new PeersResponse(key, null, []), PeersJsonContext.Default.PeersResponse)));
        owned.Add(resolver);
    }

    public async Task DisposeAsync()
    {
        foreach (var o in Enumerable.Reverse(owned))
        {
            await o.DisposeAsync();
        }
    }

    public void Dispose() => logs.Dispose();

    private Uri LayerUri => new($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative);

    /// <summary>The registry under test: empty, so everything comes from peers; no lookup cache between requests.</summary>
    private async Task<RegistryApp> Node(params string[] args)
    {
        var app = await RegistryApp.StartAsync(
            new InMemoryLocalContent(),
            logs,
            // The misbehaving peer is listed first and must be the one answered: a 1 s hedge delay keeps the honest
            // peer from being started beside it on a loaded machine, where 20 ms can pass before the first byte.
            ["--Spegel:Node:Name=b", $"--Spegel:Resolver:Url={resolver.Url}", "--Spegel:MirrorResolveTimeout=00:00:05", "--Spegel:MirrorLookupCacheTtl=00:00:00",
             "--Spegel:MirrorHedgeDelay=00:00:01", "--Spegel:MirrorMaxHedgeDelay=00:00:01", .. args]);
        owned.Add(app);
        return app;
    }

    private async Task<RegistryApp> Honest()
    {
        var app = await RegistryApp.StartAsync(content.Store, "--Spegel:Node:Name=honest");
        owned.Add(app);
        return app;
    }

    private RawPeer Raw(Func<string, Stream, Task<bool>> handler)
    {
        var peer = RawPeer.Start(handler);
        owned.Add(peer);
        return peer;
    }

    private void Answer(string key, params (string Node, string Url)[] peers) =>
        answers[key] = new PeersResponse(key, null, peers.Select(p => new Peer(p.Node, p.Url)).ToList());

    private static string Sha(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));

    private IEnumerable<string> Lines(string prefix) =>
        logs.Lines.Where(l => l.Message.StartsWith(prefix, StringComparison.Ordinal)).Select(l => l.Message);

    [Theory]
    [InlineData("--Spegel:MirrorVerifyBeforeSendBytes=33554432")]
    [InlineData("--Spegel:MirrorVerifyBeforeSendBytes=0")]
    [InlineData("--Spegel:MirrorVerifyBeforeSendBytes=0 --Spegel:MirrorSpoolPath=")]
    public async Task Blob_PeerSendsBytesPastItsContentLength_ClientGetsExactlyTheBlob_AndTheConnectionIsNeverReused(string verifyArguments)
    {
        // The right blob, then a smuggled second response with wrong bytes, on a connection the peer keeps open.
        var wrong = (byte[])content.Layer.Clone();
        wrong[0] ^= 0xff;
        var peer = Raw(async (_, stream) =>
        {
            await stream.WriteAsync(RawPeer.Head("200 OK", $"Content-Length: {content.Layer.Length}", "Content-Type: application/octet-stream"));
            await stream.WriteAsync(content.Layer);
            await stream.WriteAsync(RawPeer.Head("200 OK", $"Content-Length: {wrong.Length}"));
            await stream.WriteAsync(wrong);
            return true;
        });
        var b = await Node(verifyArguments.Split(' '));
        Answer(content.LayerDigest.ToString(), ("extra", peer.Url));

        for (var i = 0; i < 3; i++)
        {
            using var response = await b.Client.GetAsync(LayerUri);
            var body = await response.Content.ReadAsByteArrayAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(content.Layer.Length, body.Length);
            Assert.Equal(content.LayerDigest.ToString(), Sha(body));
        }

        // The bytes past the declared length are never read as a body: the connection holding them is dropped, so
        // the smuggled response never answers a later request.
        output.WriteLine($"requests per connection at the peer: {string.Join(", ", peer.RequestsPerConnection.Values)}");
        Assert.Equal(3, peer.Requests);
        Assert.All(peer.RequestsPerConnection.Values, n => Assert.Equal(1, n));
    }

    /// <summary>Declares 100 bytes fewer than the blob and sends it all: the declared bytes hash wrong.</summary>
    private RawPeer UnderstatingPeer() => Raw(async (_, stream) =>
    {
        await stream.WriteAsync(RawPeer.Head("200 OK", $"Content-Length: {content.Layer.Length - 100}"));
        await stream.WriteAsync(content.Layer);
        return false;
    });

    /// <summary>Declares the whole blob, sends half of it, then closes the connection.</summary>
    private RawPeer ShortBodyPeer() => Raw(async (_, stream) =>
    {
        await stream.WriteAsync(RawPeer.Head("200 OK", $"Content-Length: {content.Layer.Length}"));
        await stream.WriteAsync(content.Layer.AsMemory(0, content.Layer.Length / 2));
        return false;
    });

    [Fact]
    public async Task Blob_PeerDeclaresAShortContentLengthAndSendsTheWholeBlob_IsALiar_NextPeerServes()
    {
        var peer = UnderstatingPeer();
        var honest = await Honest();
        var b = await Node();
        Answer(content.LayerDigest.ToString(), ("short", peer.Url), ("honest", honest.Url.ToString()));

        using var response = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        Assert.True(b.Services.GetRequiredService<PeerHealth>().HasLied(new Peer("short", peer.Url)));
        Assert.Contains($"peer sent bytes not matching their digest short {content.LayerDigest}", Lines("peer sent bytes"));
    }

    [Fact]
    public async Task Blob_OnlyPeerDeclaresAShortContentLength_Answers404_NeverTheTruncatedBlob()
    {
        var peer = UnderstatingPeer();
        var b = await Node();
        Answer(content.LayerDigest.ToString(), ("short", peer.Url));

        using var response = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("BLOB_UNKNOWN", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.NotEmpty(Lines("peer sent bytes not matching their digest short"));
    }

    [Fact]
    public async Task Blob_PeerSendsFewerBytesThenCloses_IsPenalised_NextPeerServes()
    {
        var peer = ShortBodyPeer();
        var honest = await Honest();
        var b = await Node();
        Answer(content.LayerDigest.ToString(), ("short", peer.Url), ("honest", honest.Url.ToString()));

        using var response = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        Assert.True(b.Services.GetRequiredService<PeerHealth>().IsPenalised(new Peer("short", peer.Url)));
        var line = Assert.Single(Lines("peer failed verify-before-send, trying the next short"));
        output.WriteLine(line);
        Assert.Contains("failed mid-body", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Blob_StreamingPath_OnlyPeerSendsFewerBytesThenCloses_ClientSeesAnAbort_NeverACompleteResponse()
    {
        var peer = ShortBodyPeer();
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=0", "--Spegel:MirrorSpoolPath=");
        Answer(content.LayerDigest.ToString(), ("short", peer.Url));

        await Assert.ThrowsAnyAsync<HttpRequestException>(async () =>
        {
            using var response = await b.Client.GetAsync(LayerUri);
            await response.Content.ReadAsByteArrayAsync();
        });
        Assert.NotEmpty(Lines("mirror transfer failed, aborting response"));
    }

    [Theory]
    [InlineData("Transfer-Encoding: chunked")]
    [InlineData("Connection: close")]
    public async Task Blob_PeerSendsNoContentLength_IsNotUsed_Answers404(string framing)
    {
        var peer = Raw(async (_, stream) =>
        {
            await stream.WriteAsync(RawPeer.Head("200 OK", framing));
            if (framing.StartsWith("Transfer", StringComparison.Ordinal))
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"{content.Layer.Length:x}\r\n"));
                await stream.WriteAsync(content.Layer);
                await stream.WriteAsync(Encoding.ASCII.GetBytes("\r\n0\r\n\r\n"));
            }
            else
            {
                await stream.WriteAsync(content.Layer);
            }

            return false;
        });
        var b = await Node();
        Answer(content.LayerDigest.ToString(), ("unframed", peer.Url));

        using var response = await b.Client.GetAsync(LayerUri);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        // Before: a 200 with an empty body and the blob's digest, which containerd took as a complete, wrong blob.
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("no Content-Length from the peer", doc.RootElement.GetProperty("errors")[0].GetProperty("detail").GetProperty("attempts")[0].GetProperty("outcome").GetString());
    }

    public static TheoryData<string, string, string> NotManifests => new()
    {
        // name, Content-Type, what the log line's reason says
        { "layer", MediaTypes.OciManifest, "not valid manifest JSON" },
        { "manifest-as-index", MediaTypes.OciIndex, "media type mismatch" },
        { "manifest-as-octets", MediaTypes.OctetStream, "is not a manifest type" },
        { "config", MediaTypes.OciManifest, "must have 'config'" },
    };

    [Theory]
    [MemberData(nameof(NotManifests))]
    public async Task Manifest_PeerSendsBytesThatMatchTheDigestButAreNotThatManifest_IsNeverServed(string what, string contentType, string reason)
    {
        var (bytes, digest) = what switch
        {
            "layer" => (content.Layer, content.LayerDigest),
            "config" => (content.Config, content.ConfigDigest),
            _ => (content.Manifest, content.ManifestDigest),
        };
        var liar = Raw(async (_, stream) =>
        {
            await stream.WriteAsync(RawPeer.Head("200 OK", $"Content-Length: {bytes.Length}", $"Content-Type: {contentType}", $"Docker-Content-Digest: {digest}"));
            await stream.WriteAsync(bytes);
            return false;
        });
        var honest = await Honest();
        var b = await Node();
        Answer(digest.ToString(), ("liar", liar.Url), ("honest", honest.Url.ToString()));

        using var response = await b.Client.GetAsync(new Uri($"/v2/library/app/manifests/{digest}?ns=docker.io", UriKind.Relative));

        if (what.StartsWith("manifest", StringComparison.Ordinal))
        {
            // The honest peer has it as a manifest: served with the right type.
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(MediaTypes.OciManifest, response.Content.Headers.ContentType!.MediaType);
            Assert.Equal(digest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        }
        else
        {
            // Not a manifest anywhere: the honest peer says 404 too.
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Contains("MANIFEST_UNKNOWN", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var line = Assert.Single(Lines("peer sent a manifest that is not one, skipped liar"));
        output.WriteLine(line);
        Assert.Contains(reason, line, StringComparison.Ordinal);
        Assert.True(b.Services.GetRequiredService<PeerHealth>().HasLied(new Peer("liar", liar.Url)));
    }

    [Fact]
    public async Task Manifest_ByTag_PeerBindsItToNonJsonBytesWithTheirOwnDigest_HonestPeerWins()
    {
        var junk = Encoding.UTF8.GetBytes("#!/bin/sh\necho not a manifest\n");
        var liar = Raw(async (_, stream) =>
        {
            await stream.WriteAsync(RawPeer.Head("200 OK", $"Content-Length: {junk.Length}", $"Content-Type: {MediaTypes.OciIndex}", $"Docker-Content-Digest: {Sha(junk)}"));
            await stream.WriteAsync(junk);
            return false;
        });
        var honest = await Honest();
        var b = await Node();
        Answer("docker.io/library/app:1.0", ("liar", liar.Url), ("honest", honest.Url.ToString()));

        using var head = await b.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/library/app/manifests/1.0?ns=docker.io"));
        using var get = await b.Client.GetAsync(new Uri("/v2/library/app/manifests/1.0?ns=docker.io", UriKind.Relative));

        Assert.Equal(content.IndexDigest.ToString(), Assert.Single(head.Headers.GetValues("Docker-Content-Digest")));
        Assert.Equal(content.IndexDigest.ToString(), Sha(await get.Content.ReadAsByteArrayAsync()));
        Assert.NotEmpty(Lines("peer sent a manifest that is not one, skipped liar"));
    }

    [Fact]
    public async Task Blob_RangePastTheEnd_Local416_ThroughTheMirrorA404()
    {
        var honest = await Honest();
        var b = await Node();
        Answer(content.LayerDigest.ToString(), ("honest", honest.Url.ToString()));
        HttpRequestMessage Ranged(RegistryApp app)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, LayerUri);
            request.Headers.Range = new RangeHeaderValue(content.Layer.Length + 10, content.Layer.Length + 20);
            return request;
        }

        using var local = await honest.Client.SendAsync(Ranged(honest));
        using var mirrored = await b.Client.SendAsync(Ranged(b));
        using var doc = JsonDocument.Parse(await mirrored.Content.ReadAsStringAsync());

        // The node that holds the blob knows its size: 416 with the size. Through the mirror the peer's 416 is not
        // relayed (a peer could claim any size and fail a pull that upstream would serve): a 404, and containerd asks
        // the next host, as for any miss.
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, local.StatusCode);
        Assert.Equal($"bytes */{content.Layer.Length}", local.Content.Headers.ContentRange!.ToString());
        Assert.Equal(HttpStatusCode.NotFound, mirrored.StatusCode);
        Assert.Equal("status 416", doc.RootElement.GetProperty("errors")[0].GetProperty("detail").GetProperty("attempts")[0].GetProperty("outcome").GetString());
    }
}
