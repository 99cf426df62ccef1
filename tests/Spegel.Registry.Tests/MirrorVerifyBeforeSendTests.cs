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
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.Registry.Tests;

/// <summary>
/// Verify-before-send: a whole blob (up to <c>Spegel:MirrorVerifyBeforeSendBytes</c> in memory, above it in the
/// spool) is read and checked before a byte goes to the client, so a peer that lies or dies is replaced within the
/// same request. Fake peers answer at once; the honest fake answers its headers late, so the bad peer deterministically wins the hedge first.
/// </summary>
public sealed class MirrorVerifyBeforeSendTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private readonly List<IAsyncDisposable> owned = [];
    private readonly List<Action> cleanup = [];
    private readonly CapturedLogs logs = new();
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

        foreach (var action in cleanup)
        {
            try
            {
                action();
            }
            catch (IOException)
            {
                // Never created (the test failed first) or already gone.
            }
        }
    }

    public void Dispose() => logs.Dispose();

    private Uri LayerUri => new($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative);

    private async Task<RegistryApp> Node(params string[] args)
    {
        // No lookup cache: a test may change the resolver's answer between requests for the same digest.
        var app = await RegistryApp.StartAsync(
            new InMemoryLocalContent(),
            logs,
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

    /// <summary>The same lie met in memory (a small blob) and in the spool (the threshold below the blob's size).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task LyingPeerFirst_FirstRequestIsACleanOkFromTheHonestPeer_AndTheLiarIsPenalised(bool spooled)
    {
        var liar = await LyingPeer();
        var honest = await SlowHonestPeer();
        var spool = SpoolDirectory();
        var b = spooled ? await Node("--Spegel:MirrorVerifyBeforeSendBytes=1024", $"--Spegel:MirrorSpoolPath={spool}") : await Node($"--Spegel:MirrorSpoolPath={spool}");
        Answer(("liar", liar.Url), ("honest", honest.Url));

        using var first = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(content.Layer.Length, first.Content.Headers.ContentLength);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await first.Content.ReadAsByteArrayAsync()));
        Assert.Equal(1, liesTold);
        Assert.True(b.Services.GetRequiredService<PeerHealth>().HasLied(new Peer("liar", liar.Url)), "the liar must be marked");
        Assert.Equal(spooled, Directory.Exists(spool));

        using var second = await b.Client.GetAsync(LayerUri);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await second.Content.ReadAsByteArrayAsync()));
        Assert.Equal(1, liesTold);
        await AssertNothingHeldAsync(b, spool);
    }

    [Fact]
    public async Task SmallBlob_PeerDiesMidBody_RequestSucceedsFromTheNextPeer()
    {
        var dying = await DyingPeer();
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

    /// <summary>Answers a Range request with the rest of the blob (206), anything else with 500; records each Range.</summary>
    private Task<TinyServer> RangeOnlyHonestPeer(ConcurrentQueue<string> ranges) => FakePeer(async ctx =>
    {
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

    private Task<TinyServer> DyingPeer() => FakePeer(async ctx =>
    {
        ctx.Response.ContentLength = content.Layer.Length;
        await ctx.Response.Body.WriteAsync(content.Layer.AsMemory(0, content.Layer.Length / 3));
        await ctx.Response.Body.FlushAsync();
        ctx.Abort();
    });

    /// <summary>A spool directory of this test's own, removed at the end.</summary>
    private string SpoolDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"spegel-spool-test-{Guid.NewGuid():N}");
        cleanup.Add(() => Directory.Delete(dir, recursive: true));
        return dir;
    }

    [Theory]
    [InlineData("--Spegel:MirrorVerifyBeforeSendBytes=1024")]
    [InlineData("--Spegel:MirrorVerifyBeforeSendBytes=0")]
    public async Task BlobAboveTheThreshold_IsSpooled_PeerDiesMidBody_NextContinuesWithARangeIntoTheSpool(string threshold)
    {
        var ranges = new ConcurrentQueue<string>();
        var honest = await RangeOnlyHonestPeer(ranges);
        var dying = await DyingPeer();
        var spool = SpoolDirectory();
        var b = await Node(threshold, $"--Spegel:MirrorSpoolPath={spool}");
        Answer(("dying", dying.Url), ("honest", honest.Url));

        using var response = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        output.WriteLine($"ranges asked of the honest peer: {string.Join(", ", ranges)}");
        // A hedge under load may also have asked the honest peer for the whole blob (no Range, answered 500 here);
        // exactly one request continued the dying peer's bytes.
        var resumed = Assert.Single(ranges, r => r.Length > 0);
        Assert.StartsWith("bytes=", resumed, StringComparison.Ordinal);
        Assert.False(resumed.StartsWith("bytes=0-", StringComparison.Ordinal), resumed);
        Assert.Contains(Lines("peer failed mid-transfer, resuming"), l => l.Contains("dying", StringComparison.Ordinal));
        await AssertNothingHeldAsync(b, spool);
    }

    [Fact]
    public async Task BlobAboveTheThreshold_OnlyLiars_Answers404_NeverAnAbort()
    {
        var liar = await LyingPeer();
        var spool = SpoolDirectory();
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=0", $"--Spegel:MirrorSpoolPath={spool}");
        Answer(("liar-1", liar.Url), ("liar-2", liar.Url));

        using var response = await b.Client.GetAsync(LayerUri);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("BLOB_UNKNOWN", body, StringComparison.Ordinal);
        Assert.Contains("do not match their digest", body, StringComparison.Ordinal);
        await AssertNothingHeldAsync(b, spool);
    }

    [Fact]
    public async Task Spool_WhileHoldingABlob_HasNoFileOnDisk_AndItsBudgetIsReserved()
    {
        // The peer sends half, waits until the test has looked, then sends the rest.
        var looked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var halfSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var peer = await FakePeer(async ctx =>
        {
            ctx.Response.ContentLength = content.Layer.Length;
            var half = content.Layer.Length / 2;
            await ctx.Response.Body.WriteAsync(content.Layer.AsMemory(0, half));
            await ctx.Response.Body.FlushAsync();
            halfSent.TrySetResult();
            await looked.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await ctx.Response.Body.WriteAsync(content.Layer.AsMemory(half));
        });
        var spool = SpoolDirectory();
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=0", $"--Spegel:MirrorSpoolPath={spool}", "--Spegel:MirrorReadTimeout=00:00:30");
        Answer(("peer", peer.Url));

        var request = b.Client.GetAsync(LayerUri);
        await halfSent.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var state = b.Services.GetRequiredService<MirrorSpool>();
        await Poll(() => state.ReservedBytes == content.Layer.Length);
        var reserved = state.ReservedBytes;
        var files = Directory.Exists(spool) ? Directory.GetFileSystemEntries(spool) : [];
        var answeredEarly = request.IsCompleted;
        looked.SetResult();

        using var response = await request;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        Assert.False(answeredEarly, "nothing may be answered before the whole blob is verified");
        Assert.Equal(content.Layer.Length, reserved);
        Assert.True(Directory.Exists(spool), "the spool directory is created on first use");
        Assert.Empty(files);
        await AssertNothingHeldAsync(b, spool);
    }

    [Fact]
    public async Task Spool_BudgetTooSmall_BlobStreams_AndTheLineSaysWhy()
    {
        var liar = await LyingPeer();
        var spool = SpoolDirectory();
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=0", $"--Spegel:MirrorSpoolPath={spool}", "--Spegel:MirrorSpoolLimitBytes=1024");
        Answer(("liar", liar.Url));

        // Streaming: headers and all but the last chunk went out, so the only way left is an abort.
        await Assert.ThrowsAnyAsync<HttpRequestException>(async () =>
        {
            using var response = await b.Client.GetAsync(LayerUri);
            await response.Content.ReadAsByteArrayAsync();
        });
        Assert.NotEmpty(Lines("mirror spool budget used up, streaming the blob instead"));
    }

    [Fact]
    public async Task Spool_DirectoryUnusable_BlobStreams_AndOneLineSaysWhy()
    {
        var honest = await SlowHonestPeer();
        var notADirectory = Path.Combine(Path.GetTempPath(), $"spegel-spool-file-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(notADirectory, "a file where the spool directory should be");
        cleanup.Add(() => File.Delete(notADirectory));
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=0", $"--Spegel:MirrorSpoolPath={notADirectory}");
        Answer(("honest", honest.Url));

        for (var i = 0; i < 2; i++)
        {
            using var response = await b.Client.GetAsync(LayerUri);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        }

        var line = Assert.Single(Lines("mirror spool directory unusable"));
        output.WriteLine(line);
        Assert.Contains(notADirectory, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SpoolOff_BlobAboveTheThreshold_LyingPeer_IsAbortedAsBefore()
    {
        var liar = await LyingPeer();
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=1024", "--Spegel:MirrorSpoolPath=");
        Answer(("liar", liar.Url));

        Assert.False(b.Services.GetRequiredService<MirrorSpool>().Enabled);

        // The streaming path: headers and all but the last chunk went out, so the only way left is an abort.
        await Assert.ThrowsAnyAsync<HttpRequestException>(async () =>
        {
            using var response = await b.Client.GetAsync(LayerUri);
            await response.Content.ReadAsByteArrayAsync();
        });
    }

    [Fact]
    public async Task SpoolOff_BlobAboveTheThreshold_StillStreams_ResumingWithARange()
    {
        var ranges = new ConcurrentQueue<string>();
        var honest = await RangeOnlyHonestPeer(ranges);
        var dying = await DyingPeer();
        var b = await Node("--Spegel:MirrorVerifyBeforeSendBytes=1024", "--Spegel:MirrorSpoolPath=");
        Answer(("dying", dying.Url), ("honest", honest.Url));

        using var response = await b.Client.GetAsync(LayerUri);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha(await response.Content.ReadAsByteArrayAsync()));
        Assert.Contains(ranges, r => r.StartsWith("bytes=", StringComparison.Ordinal) && !r.StartsWith("bytes=0-", StringComparison.Ordinal));
        await AssertNoSlotHeldAsync(b);
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

    /// <summary>No memory slot, no spool byte reserved and no file left in the spool directory.</summary>
    private static async Task AssertNothingHeldAsync(RegistryApp app, string spool)
    {
        await AssertNoSlotHeldAsync(app);
        var state = app.Services.GetRequiredService<MirrorSpool>();
        await Poll(() => state.ReservedBytes == 0);
        Assert.Equal(0, state.ReservedBytes);
        Assert.Empty(Directory.Exists(spool) ? Directory.GetFileSystemEntries(spool) : []);
    }

    private static async Task Poll(Func<bool> done)
    {
        for (var i = 0; i < 250 && !done(); i++)
        {
            await Task.Delay(20);
        }
    }

    private IEnumerable<string> Lines(string prefix) =>
        logs.Lines.Where(l => l.Message.StartsWith(prefix, StringComparison.Ordinal)).Select(l => l.Message);

    [Fact]
    public void Options_InvalidVerifySettings_AreEachReported()
    {
        var errors = new MirrorOptions { MirrorVerifyBeforeSendBytes = -1, MirrorVerifyConcurrency = 0, MirrorSpoolPath = "relative/spool", MirrorSpoolLimitBytes = -1 }.Validate().ToList();

        Assert.Contains(errors, e => e.StartsWith("Spegel:MirrorVerifyBeforeSendBytes", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Spegel:MirrorVerifyConcurrency", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Spegel:MirrorSpoolPath must be an absolute path", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Spegel:MirrorSpoolLimitBytes", StringComparison.Ordinal));
        Assert.Empty(new MirrorOptions().Validate());
        Assert.Empty(new MirrorOptions { MirrorSpoolPath = string.Empty }.Validate());
    }
}
