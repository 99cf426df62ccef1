using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Spegel.Core.Content;
using Spegel.Core.Routing;
using Spegel.Registry.Mirror;

namespace Spegel.Registry.Tests;

/// <summary>
/// Verify-before-send: a whole blob up to <c>Spegel:MirrorVerifyBeforeSendBytes</c> is read and checked before a
/// byte goes to the client, so a peer that lies or dies is replaced within the same request. Fake peers answer at
/// once; the honest fake answers its headers late, so the bad peer deterministically wins the hedge first.
/// </summary>
public sealed class MirrorVerifyBeforeSendTests : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> owned = [];
    private readonly ConcurrentDictionary<string, PeersResponse> answers = new();
    private readonly TestContent content = new();
    private TinyServer resolver = null!;
    private int honestAsked;
    private int liesTold;

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

    private Uri LayerUri => new($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative);

    private async Task<RegistryApp> Node(params string[] args)
    {
        // No lookup cache: a test may change the resolver's answer between requests for the same digest.
        var app = await RegistryApp.StartAsync(
            new InMemoryLocalContent(),
            ["--Spegel:Node:Name=b", $"--Spegel:Resolver:Url={resolver.Url}", "--Spegel:MirrorResolveTimeout=00:00:05", "--Spegel:MirrorLookupCacheTtl=00:00:00", .. args]);
        owned.Add(app);
        return app;
    }

    private async Task<TinyServer> FakePeer(RequestDelegate handler)
    {
        var server = await TinyServer.StartAsync(app => app.Run(handler));
        owned.Add(server);
        return server;
    }

    /// <summary>Serves the right bytes, but only after 150 ms: later than the hedge delay, so never the first winner.</summary>
    private Task<TinyServer> SlowHonestPeer() => FakePeer(async ctx =>
    {
        Interlocked.Increment(ref honestAsked);
        await Task.Delay(150, ctx.RequestAborted);
        ctx.Response.ContentLength = content.Layer.Length;
        ctx.Response.ContentType = "application/octet-stream";
        await ctx.Response.Body.WriteAsync(content.Layer, ctx.RequestAborted);
    });

    /// <summary>Sends the blob with its last byte flipped: the full advertised length, wrong digest.</summary>
    private Task<TinyServer> LyingPeer() => FakePeer(async ctx =>
    {
        Interlocked.Increment(ref liesTold);
        var wrong = (byte[])content.Layer.Clone();
        wrong[^1] ^= 0xff;
        ctx.Response.ContentLength = wrong.Length;
        ctx.Response.ContentType = "application/octet-stream";
        await ctx.Response.Body.WriteAsync(wrong, ctx.RequestAborted);
    });

    private void Answer(params (string Node, string Url)[] peers) =>
        answers[content.LayerDigest.ToString()] = new PeersResponse(content.LayerDigest.ToString(), null, peers.Select(p => new Peer(p.Node, p.Url)).ToList());

    private static string Sha(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));

    [Fact]
    public async Task SmallBlob_LyingPeerFirst_FirstRequestIsACleanOkFromTheHonestPeer_AndTheLiarIsPenalised()
    {
        var liar = await LyingPeer();
        var honest = await SlowHonestPeer();
        var b = await Node();
        Answer(("liar", liar.Url), ("honest", honest.Url));

        using var first = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(content.Layer.Length, first.Content.Headers.ContentLength);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await first.Content.ReadAsByteArrayAsync()));
        Assert.Equal(1, liesTold);
        Assert.True(b.Services.GetRequiredService<PeerHealth>().HasLied(new Peer("liar", liar.Url)), "the liar must be marked");

        using var second = await b.Client.GetAsync(LayerUri);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await second.Content.ReadAsByteArrayAsync()));
        Assert.Equal(1, liesTold);
        await AssertNoSlotHeldAsync(b);
    }

    [Fact]
    public async Task SmallBlob_PeerDiesMidBody_RequestSucceedsFromTheNextPeer()
    {
        var dying = await FakePeer(async ctx =>
        {
            ctx.Response.ContentLength = content.Layer.Length;
            await ctx.Response.Body.WriteAsync(content.Layer.AsMemory(0, content.Layer.Length / 3));
            await ctx.Response.Body.FlushAsync();
            ctx.Abort();
        });
        var honest = await SlowHonestPeer();
        var b = await Node();
        Answer(("dying", dying.Url), ("honest", honest.Url));

        using var response = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        Assert.True(b.Services.GetRequiredService<PeerHealth>().IsPenalised(new Peer("dying", dying.Url)));
    }

    [Fact]
    public async Task SmallBlob_PeerStallsMidBody_RequestSucceedsFromTheNextPeerAfterTheReadTimeout()
    {
        var staller = await FakePeer(async ctx =>
        {
            ctx.Response.ContentLength = content.Layer.Length;
            await ctx.Response.Body.WriteAsync(content.Layer.AsMemory(0, 4096));
            await ctx.Response.Body.FlushAsync();
            await Task.Delay(Timeout.Infinite, ctx.RequestAborted);
        });
        var honest = await SlowHonestPeer();
        var b = await Node("--Spegel:MirrorReadTimeout=00:00:00.300");
        Answer(("staller", staller.Url), ("honest", honest.Url));

        using var response = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task SmallBlob_AllPeersLie_Answers404_NeverWrongBytesNorAnAbort()
    {
        var liar = await LyingPeer();
        var b = await Node();
        Answer(("liar-1", liar.Url), ("liar-2", liar.Url), ("liar-3", liar.Url));

        using var response = await b.Client.GetAsync(LayerUri);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("BLOB_UNKNOWN", doc.RootElement.GetProperty("errors")[0].GetProperty("code").GetString());
        // Every liar was asked; a hedge under load may ask one twice, but the rounds are bounded.
        Assert.InRange(liesTold, 3, 6);
        await AssertNoSlotHeldAsync(b);
    }

    [Fact]
    public async Task BlobAboveTheThreshold_StillStreams_ResumingWithARange()
    {
        var ranges = new ConcurrentQueue<string>();
        var honest = await FakePeer(async ctx =>
        {
            // Answers only the streaming path's resume: a Range request from the offset where the dying peer stopped.
            var range = ctx.Request.GetTypedHeaders().Range?.Ranges.Single();
            ranges.Enqueue(ctx.Request.Headers.Range.ToString());
            if (range?.From is not { } from)
            {
                ctx.Response.StatusCode = 500;
                return;
            }

            var to = range.To ?? (content.Layer.Length - 1);
            ctx.Response.StatusCode = 206;
            ctx.Response.ContentLength = to - from + 1;
            ctx.Response.Headers.ContentRange = $"bytes {from}-{to}/{content.Layer.Length}";
            await ctx.Response.Body.WriteAsync(content.Layer.AsMemory((int)from, (int)(to - from + 1)), ctx.RequestAborted);
        });
        var dying = await FakePeer(async ctx =>
        {
            ctx.Response.ContentLength = content.Layer.Length;
            await ctx.Response.Body.WriteAsync(content.Layer.AsMemory(0, content.Layer.Length / 3));
            await ctx.Response.Body.FlushAsync();
            ctx.Abort();
        });
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=1024");
        Answer(("dying", dying.Url), ("honest", honest.Url));

        using var response = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        Assert.Contains(ranges, r => r.StartsWith("bytes=", StringComparison.Ordinal) && !r.StartsWith("bytes=0-", StringComparison.Ordinal));
        await AssertNoSlotHeldAsync(b);
    }

    [Fact]
    public async Task BlobAboveTheThreshold_LyingPeer_IsAbortedAsBefore()
    {
        var liar = await LyingPeer();
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=1024");
        Answer(("liar", liar.Url));

        // The streaming path: headers and all but the last chunk went out, so the only way left is an abort.
        await Assert.ThrowsAnyAsync<HttpRequestException>(async () =>
        {
            using var response = await b.Client.GetAsync(LayerUri);
            await response.Content.ReadAsByteArrayAsync();
        });
    }

    [Fact]
    public async Task VerifyBeforeSendOff_LyingPeer_IsAbortedAsBefore()
    {
        var liar = await LyingPeer();
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=0");
        Answer(("liar", liar.Url));

        await Assert.ThrowsAnyAsync<HttpRequestException>(async () =>
        {
            using var response = await b.Client.GetAsync(LayerUri);
            await response.Content.ReadAsByteArrayAsync();
        });
    }

    [Fact]
    public async Task TwentySequentialVerifiedRequests_WithOneSlot_AllSucceed_SoNoSlotOrBufferIsRetained()
    {
        // Each request meets a fresh liar first: only the verified path survives it (streaming would abort), so a
        // slot kept by any earlier request would make a later one fail.
        var liar = await LyingPeer();
        var honest = await SlowHonestPeer();
        var b = await Node("--Spegel:MirrorVerifyConcurrency=1");

        for (var i = 0; i < 20; i++)
        {
            Answer(($"liar-{i}", liar.Url), ("honest", honest.Url));
            using var response = await b.Client.GetAsync(LayerUri);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));

            // A slot still held (for a moment) would send the next request down the streaming path; a leaked one never comes back.
            await AssertNoSlotHeldAsync(b);
        }

        Assert.Equal(20, liesTold);
        await AssertNoSlotHeldAsync(b);
    }

    [Fact]
    public async Task Head_IsNotBuffered()
    {
        var honest = await SlowHonestPeer();
        var b = await Node();
        Answer(("honest", honest.Url));

        using var head = await b.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, LayerUri));

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(content.Layer.Length, head.Content.Headers.ContentLength);
        await AssertNoSlotHeldAsync(b);
    }

    /// <summary>The slot is released just after the last byte is handed over, which may be a moment after the client read it.</summary>
    private static async Task AssertNoSlotHeldAsync(RegistryApp app)
    {
        var mirror = app.Services.GetRequiredService<MirrorService>();
        for (var i = 0; i < 100 && mirror.VerifySlotsInUse != 0; i++)
        {
            await Task.Delay(20);
        }

        Assert.Equal(0, mirror.VerifySlotsInUse);
    }

    [Fact]
    public void Options_InvalidVerifySettings_AreEachReported()
    {
        var errors = new MirrorOptions { MirrorVerifyBeforeSendBytes = -1, MirrorVerifyConcurrency = 0 }.Validate().ToList();

        Assert.Contains(errors, e => e.StartsWith("Spegel:MirrorVerifyBeforeSendBytes", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Spegel:MirrorVerifyConcurrency", StringComparison.Ordinal));
        Assert.Empty(new MirrorOptions().Validate());
    }
}
