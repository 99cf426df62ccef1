using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Options;
using Spegel.Core;
using Spegel.Core.Routing;
using Spegel.Registry.Observability;

namespace Spegel.Registry.Mirror;

/// <summary>
/// The mirror path: on a local miss, ask the resolver who holds the key, fetch it from a peer (hedged, bounded by
/// <see cref="MirrorOptions.MirrorResolveTimeout"/>), and serve it verified: a whole blob is read and checked before
/// a byte is sent, in memory up to <see cref="MirrorOptions.MirrorVerifyBeforeSendBytes"/> and in the spool
/// (<see cref="MirrorSpool"/>) above it; ranges, and blobs neither has room for, stream through verified and
/// resumable. When nothing answers in time the result is a fast 404, so containerd goes to the next
/// host: the mirror must not make a pull fail that would have succeeded without it.
/// </summary>
public sealed partial class MirrorService(
    IPeerResolver resolver,
    HedgedPeerClient peers,
    PeerHealth health,
    ManifestCache manifests,
    MirrorSpool spool,
    IOptions<MirrorOptions> mirrorOptions,
    IOptions<RegistryOptions> registryOptions,
    IHttpClientFactory clients,
    RegistryMetrics metrics,
    ILogger<MirrorService> logger)
{
    private readonly MirrorOptions options = mirrorOptions.Value;

    // Bounds the memory verify-before-send holds: at most this many blobs of at most the threshold each.
    private readonly VerifySlots verifySlots = new(mirrorOptions.Value.MirrorVerifyConcurrency);

    public async Task<IResult> ServeAsync(HttpContext context, DistributionPath path, RequestLogFeature log)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(log);
        var isManifest = path.Kind == DistributionPathKind.Manifest;
        if (isManifest && path.Digest is { } wanted && manifests.TryGet(wanted, out var cached))
        {
            log.Source = cached.Node;
            return new MirroredManifestResult(cached.Body, cached.MediaType, wanted);
        }

        var key = path.Digest is { } d ? ContentKey.ForDigest(d) : ContentKey.ForTag(path.Reference!);
        var started = TimeProvider.System.GetTimestamp();
        PeersResponse found;
        try
        {
            using var lookupTimeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            lookupTimeout.CancelAfter(options.MirrorResolveTimeout);
            found = await resolver.LookupAsync(key, lookupTimeout.Token);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or InvalidDataException or InvalidOperationException or System.Text.Json.JsonException or NotSupportedException
                                   && !context.RequestAborted.IsCancellationRequested)
        {
            return Miss(path, key, log, $"resolver unavailable: {ex.Message}", []);
        }

        if (found.Peers.Count == 0)
        {
            return Miss(path, key, log, "no peer holds it", []);
        }

        var budget = options.MirrorResolveTimeout - TimeProvider.System.GetElapsedTime(started);
        var isHead = HttpMethods.IsHead(context.Request.Method);
        var range = context.Request.Headers.Range.ToString();

        // A manifest is always fetched whole (it is small) and verified, also for a HEAD: a HEAD by tag is then
        // answered with a digest checked against real bytes, and the GET by that digest containerd sends next is
        // served from the manifest cache.
        var (winner, attempts) = await peers.SendAsync(
            found.Peers,
            peer => BuildRequest(peer, path, isHead && !isManifest ? HttpMethod.Head : HttpMethod.Get, isManifest ? null : range, offset: null, end: null),
            (peer, response, ct) => isManifest ? AcceptManifestAsync(peer, response, path, found.Digest, ct) : Task.FromResult(AcceptBlob(response)),
            budget > TimeSpan.Zero ? budget : TimeSpan.FromMilliseconds(1),
            context.RequestAborted);

        if (winner is null)
        {
            return Miss(path, key, log, "no peer answered in time", attempts);
        }

        var wholeGet = range.Length == 0 && !isHead;
        if (!isManifest && wholeGet && TryHold(winner, path.Digest!.Value) is { } held)
        {
            return await ServeVerifiedAsync(context, path, key, log, found.Peers, winner, [.. attempts], held);
        }

        log.Source = winner.Peer.Node;
        context.Response.RegisterForDispose(winner);
        if (isManifest)
        {
            var manifest = winner.Body!;
            var mediaType = winner.Response.Content.Headers.ContentType?.ToString() ?? MediaTypes.OctetStream;
            var digest = path.Digest ?? Digest.Parse(winner.Response.Headers.GetValues(DistributionHandler.ContentDigestHeader).First());
            manifests.Add(digest, new CachedManifest(manifest, mediaType, winner.Peer.Node), options.MirrorManifestCacheTtl);
            return new MirroredManifestResult(manifest, mediaType, digest);
        }

        var remaining = health.Order(found.Peers).Where(p => p.Node != winner.Peer.Node).ToList();
        return new MirroredBlobResult(winner, path, remaining, wholeGet, this);
    }

    /// <summary>Slots taken by verify-before-send in memory right now; zero when no request holds a buffered blob.</summary>
    internal int VerifySlotsInUse => verifySlots.InUse;

    /// <summary>
    /// Where a whole blob from <paramref name="winner"/> is held until verified: pooled memory up to
    /// <see cref="MirrorOptions.MirrorVerifyBeforeSendBytes"/> while a memory slot is free, else the spool while it has
    /// room. Null: the blob streams (no size, a partial answer, or neither has room).
    /// </summary>
    private VerifyBuffer? TryHold(PeerResponse winner, Digest digest)
    {
        if (winner.Response.StatusCode != HttpStatusCode.OK || winner.Response.Content.Headers.ContentLength is not { } length)
        {
            return null;
        }

        if (length <= options.MirrorVerifyBeforeSendBytes && verifySlots.TryAcquire() is { } slot)
        {
            return new PooledBody(length, digest, slot);
        }

        return spool.TryCreate(length, digest);
    }

    /// <summary>
    /// Verify-before-send: read the winner's whole body (into memory or the spool) and hash it; only bytes that
    /// match are sent. A peer that dies or stalls mid-body is penalised and the next peer continues from the same
    /// offset with a Range request; one whose bytes do not match is penalised (with every peer that contributed) and
    /// the next peer starts over. All within this request, so containerd sees one clean 200 or a 404 (and goes
    /// upstream) — never a reset mid-transfer, which fails its pull outright and can leave a partial ingest of wrong
    /// bytes behind.
    /// </summary>
    private async Task<IResult> ServeVerifiedAsync(
        HttpContext context, DistributionPath path, string key, RequestLogFeature log, IReadOnlyList<Peer> candidates, PeerResponse winner, List<PeerAttempt> attempts, VerifyBuffer first)
    {
        var digest = path.Digest!.Value;
        var aborted = context.RequestAborted;
        var tried = new HashSet<string>(StringComparer.Ordinal);
        var contributors = new List<Peer>();
        VerifyBuffer? buffer = first;
        try
        {
            for (var round = 1; ; round++)
            {
                tried.Add(winner.Peer.Node);
                contributors.Add(winner.Peer);
                var started = TimeProvider.System.GetTimestamp();
                var holding = buffer ?? throw new InvalidOperationException("no buffer for a verified transfer");
                string outcome;
                using (winner)
                {
                    try
                    {
                        await using (var stream = await winner.Response.Content.ReadAsStreamAsync(aborted))
                        {
                            await holding.AppendAsync(stream, options.MirrorReadTimeout, aborted);
                        }

                        if (holding.Complete() == digest)
                        {
                            var result = new VerifiedBlobResult(holding, digest);
                            buffer = null;
                            context.Response.RegisterForDispose(result);
                            log.Source = winner.Peer.Node;
                            return result;
                        }

                        ReportMismatch(contributors, digest);
                        outcome = "blob bytes do not match their digest";
                        contributors.Clear();
                        holding.Dispose();
                        buffer = null;
                    }
                    catch (Exception ex) when (!aborted.IsCancellationRequested && ex is IOException or HttpRequestException or OperationCanceledException)
                    {
                        health.RecordFailure(winner.Peer);
                        metrics.PeerFailed(RegistryMetrics.Classify(ex));
                        outcome = ex is OperationCanceledException ? "failed mid-body: the peer stalled" : $"failed mid-body: {ex.Message}";
                    }
                }

                attempts.Add(new PeerAttempt(winner.Peer.Node, outcome, Math.Round(TimeProvider.System.GetElapsedTime(started).TotalMilliseconds, 3)));
                LogVerifyRetry(winner.Peer.Node, key, outcome);
                var rest = candidates.Where(p => !tried.Contains(p.Node)).ToList();
                if (rest.Count == 0 || round >= options.MirrorResolveRetries)
                {
                    return Miss(path, key, log, "no peer delivered verified bytes", attempts);
                }

                // What the failed peer delivered is kept: the next continues from there. After a mismatch (or before
                // any byte) the next starts over and may advertise another size (the liar may have lied about it).
                var offset = buffer?.Position ?? 0;
                if (offset == 0 && buffer is not null)
                {
                    buffer.Dispose();
                    buffer = null;
                    contributors.Clear();
                }

                var length = buffer?.Length ?? 0;

                // Each new peer gets the full header budget: the previous one used it up streaming a body, and a
                // stalled peer is still bounded by it (headers) and by the read timeout (body).
                var (next, more) = await peers.SendAsync(
                    rest,
                    peer => BuildRequest(peer, path, HttpMethod.Get, null, offset: offset > 0 ? offset : null, end: offset > 0 ? length - 1 : null),
                    (_, response, _) => Task.FromResult(offset > 0 ? AcceptContinuation(response, offset, length) : AcceptBlob(response)),
                    options.MirrorResolveTimeout,
                    aborted);
                attempts.AddRange(more);
                tried.UnionWith(more.Where(a => a.Outcome is not ("ok" or "cancelled")).Select(a => a.Node));
                if (next is null)
                {
                    return Miss(path, key, log, "no peer delivered verified bytes", attempts);
                }

                winner = next;
                if (buffer is not null && winner.Response.StatusCode == HttpStatusCode.PartialContent)
                {
                    ReportResume(contributors[^1], winner.Peer, offset, outcome);
                    continue;
                }

                // A peer may ignore the Range and send the whole blob (200): start over with its bytes.
                buffer?.Dispose();
                buffer = null;
                contributors.Clear();

                buffer = TryHold(winner, digest);
                if (buffer is null)
                {
                    // Neither memory nor the spool has room for this peer's size now (or it sent no size): stream it.
                    log.Source = winner.Peer.Node;
                    context.Response.RegisterForDispose(winner);
                    var spares = health.Order(candidates).Where(p => !tried.Contains(p.Node) && p.Node != winner.Peer.Node).ToList();
                    return new MirroredBlobResult(winner, path, spares, verify: true, this);
                }
            }
        }
        finally
        {
            buffer?.Dispose();
        }
    }

    /// <summary>
    /// A peer continuing a held blob must answer exactly the rest of it (206 from the offset to the end), or the whole
    /// blob (200: Range is optional in HTTP), which then starts the buffer over.
    /// </summary>
    private static Acceptance AcceptContinuation(HttpResponseMessage response, long offset, long length) =>
        response.StatusCode == HttpStatusCode.OK ? AcceptBlob(response)
        : response.StatusCode != HttpStatusCode.PartialContent ? Acceptance.No($"status {(int)response.StatusCode} to a Range request")
        : response.Content.Headers.ContentRange is not { From: { } from } range || from != offset || (range.Length is { } total && total != length)
            ? Acceptance.No($"Content-Range '{response.Content.Headers.ContentRange}' does not continue at {offset} of {length}")
        : response.Content.Headers.ContentLength != length - offset ? Acceptance.No($"Content-Length {response.Content.Headers.ContentLength} is not the {length - offset} bytes left")
        : Acceptance.Yes();

    internal static HttpRequestMessage BuildRequest(Peer peer, DistributionPath path, HttpMethod method, string? range, long? offset, long? end)
    {
        var request = new HttpRequestMessage(method, new Uri(new Uri(peer.Url), path.ToPathAndQuery()));
        request.Headers.TryAddWithoutValidation(DistributionHandler.MirroredHeader, "true");
        if (offset is { } from)
        {
            request.Headers.Range = new RangeHeaderValue(from, end);
        }
        else if (!string.IsNullOrEmpty(range))
        {
            request.Headers.TryAddWithoutValidation("Range", range);
        }

        return request;
    }

    /// <summary>
    /// A blob answer must say how long it is (and a 206 where it starts): without a length the end of the body
    /// cannot be told from a peer that died, and a chunked 200 would be relayed as an empty, complete blob.
    /// </summary>
    private static Acceptance AcceptBlob(HttpResponseMessage response) =>
        response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.PartialContent) ? Acceptance.No($"status {(int)response.StatusCode}")
        : response.Content.Headers.ContentLength is null ? Acceptance.No("no Content-Length from the peer")
        : response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From is null ? Acceptance.No("206 without a Content-Range from the peer")
        : Acceptance.Yes();

    private async Task<Acceptance> AcceptManifestAsync(Peer peer, HttpResponseMessage response, DistributionPath path, string? newestDigest, CancellationToken cancellationToken)
    {
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return Acceptance.No($"status {(int)response.StatusCode}");
        }

        var advertised = response.Headers.TryGetValues(DistributionHandler.ContentDigestHeader, out var values) ? values.FirstOrDefault() : null;
        Digest? expected = path.Digest ?? (Digest.TryParse(advertised, out var a) ? a : null);
        if (expected is null)
        {
            return Acceptance.No("no Docker-Content-Digest from the peer");
        }

        // A tag must resolve to the newest digest the cluster knows for it, never to what a stale peer still holds.
        if (path.Digest is null && newestDigest is not null && expected.Value.ToString() != newestDigest)
        {
            return Acceptance.No($"stale tag: peer has {expected}, newest is {newestDigest}");
        }

        var body = await ReadBoundedAsync(response.Content, registryOptions.Value.MaxManifestBytes, cancellationToken);
        if (body is null)
        {
            return Acceptance.No("manifest larger than allowed");
        }

        if (Digest.ComputeSha256(body) != expected.Value && !MatchesSha512(body, expected.Value))
        {
            ReportMismatch([peer], expected.Value);
            return Acceptance.No("manifest bytes do not match their digest");
        }

        // Right bytes are not enough: a layer served on the manifests endpoint, or a tag bound to any bytes that hash
        // to the digest the peer itself advertised, must not reach containerd as a manifest. Served only when the
        // peer's Content-Type is a manifest type and the bytes parse as that type, as the local path requires.
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        var parsed = MediaTypes.IsManifest(mediaType) ? ManifestParser.Parse(mediaType, body) : null;
        if (parsed is not { IsSuccess: true })
        {
            var reason = parsed?.Error ?? $"content type '{mediaType}' is not a manifest type";
            health.RecordMismatch(peer);
            LogNotAManifest(peer.Node, expected.Value.ToString(), reason);
            return Acceptance.No($"not a manifest: {reason}");
        }

        return Acceptance.Yes(body);
    }

    private static bool MatchesSha512(byte[] body, Digest expected) =>
        expected.Algorithm == Digest.Sha512 && Digest.FromSha512Bytes(System.Security.Cryptography.SHA512.HashData(body)) == expected;

    private static async Task<byte[]?> ReadBoundedAsync(HttpContent content, long max, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > max)
        {
            return null;
        }

        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > max)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    internal TimeSpan ReadTimeout => options.MirrorReadTimeout;

    internal RegistryMetrics Metrics => metrics;

    /// <summary>One request to one peer, for resuming a transfer; bounded by the read timeout until headers arrive.</summary>
    internal async Task<HttpResponseMessage> SendToPeerAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.MirrorReadTimeout);
        return await clients.CreateClient(HedgedPeerClient.ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
    }

    internal void ReportMismatch(IEnumerable<Peer> contributors, Digest digest)
    {
        foreach (var peer in contributors)
        {
            health.RecordMismatch(peer);
            metrics.PeerFailed(PeerFailureKind.DigestMismatch);
            LogMismatch(peer.Node, digest.ToString());
        }
    }

    internal void ReportResume(Peer from, Peer to, long offset, string error) => LogResume(from.Node, to.Node, offset, error);

    internal void ReportTransferFailed(string key, long offset, string error) => LogTransferFailed(key, offset, error);

    private IResult Miss(DistributionPath path, string key, RequestLogFeature log, string reason, IReadOnlyList<PeerAttempt> attempts)
    {
        log.Source = "miss";
        var err = $"mirror with image component {key} could not be found";
        LogMiss(err, key, reason, attempts.Count);
        return OciErrors.Result(
            StatusCodes.Status404NotFound,
            path.Kind == DistributionPathKind.Manifest ? OciErrors.ManifestUnknown : OciErrors.BlobUnknown,
            err,
            new MirrorMissDetail(reason, attempts));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "mirror miss {err} {key} {reason} {attempts}")]
    private partial void LogMiss(string err, string key, string reason, int attempts);

    [LoggerMessage(Level = LogLevel.Warning, Message = "peer sent a manifest that is not one, skipped {peer} {digest} {reason}")]
    private partial void LogNotAManifest(string peer, string digest, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "peer sent bytes not matching their digest {peer} {digest}")]
    private partial void LogMismatch(string peer, string digest);

    [LoggerMessage(Level = LogLevel.Warning, Message = "peer failed mid-transfer, resuming {peer} {next} {offset} {error}")]
    private partial void LogResume(string peer, string next, long offset, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "peer failed verify-before-send, trying the next {peer} {key} {outcome}")]
    private partial void LogVerifyRetry(string peer, string key, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "mirror transfer failed, aborting response {key} {offset} {error}")]
    private partial void LogTransferFailed(string key, long offset, string error);
}

/// <summary>The <c>detail</c> of a mirror 404: why, and what each peer did.</summary>
public sealed record MirrorMissDetail(string Reason, IReadOnlyList<PeerAttempt> Attempts);
