using System.Net;
using System.Security.Cryptography;
using Spegel.Core;
using Spegel.Core.Routing;
using Spegel.Registry.Observability;

namespace Spegel.Registry.Mirror;

/// <summary>A manifest fetched whole from a peer (now or moments ago) and verified: its bytes, nothing for a HEAD.</summary>
internal sealed class MirroredManifestResult(byte[] body, string mediaType, Digest digest) : IResult
{
    public Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = mediaType;
        response.ContentLength = body.Length;
        response.Headers[DistributionHandler.ContentDigestHeader] = digest.ToString();
        return HttpMethods.IsHead(httpContext.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(body, httpContext.RequestAborted).AsTask();
    }
}

/// <summary>
/// A blob streamed from a peer. A peer that fails or stalls mid-body is replaced by the next one with a Range
/// request from the same offset, so the client sees one unbroken response. A whole blob is hashed as it flows and
/// its last chunk held back until the hash matches: bytes that do not match their digest are never completed to the
/// client (the connection is aborted instead). Only ranges and blobs too large (or too many at once) for
/// <see cref="VerifiedBlobResult"/> come here: an abort this late fails containerd's pull, the price of not holding
/// a large blob in memory before its first byte is sent.
/// </summary>
internal sealed class MirroredBlobResult(PeerResponse winner, DistributionPath path, IReadOnlyList<Peer> spares, bool verify, MirrorService mirror) : IResult
{
    private const int ChunkSize = 128 * 1024;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        var peer = winner.Response;
        response.StatusCode = (int)peer.StatusCode;
        response.ContentType = MediaTypes.OctetStream;
        response.ContentLength = peer.Content.Headers.ContentLength;
        response.Headers.AcceptRanges = "bytes";
        response.Headers[DistributionHandler.ContentDigestHeader] = path.Digest!.Value.ToString();
        if (peer.Content.Headers.ContentRange is { } contentRange)
        {
            response.Headers.ContentRange = contentRange.ToString();
        }

        if (HttpMethods.IsHead(httpContext.Request.Method) || peer.Content.Headers.ContentLength is not { } length)
        {
            return;
        }

        var position = peer.Content.Headers.ContentRange?.From ?? 0;
        var end = position + length;
        await StreamAsync(httpContext, position, end);
    }

    /// <summary>
    /// Reads the peer's body straight into the response pipe's memory (no intermediate buffer, no second copy) and
    /// hashes it there. Every chunk is advanced and flushed as it arrives, except the one that completes a verified
    /// blob: it stays unadvanced, so unsent, until the digest matches; a mismatch aborts with it still held back.
    /// </summary>
    private async Task StreamAsync(HttpContext httpContext, long position, long end)
    {
        var digest = path.Digest!.Value;
        var aborted = httpContext.RequestAborted;
        var writer = httpContext.Response.BodyWriter;
        using var hash = verify ? IncrementalHash.CreateHash(digest.Algorithm == Digest.Sha512 ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256) : null;
        var current = winner.Peer;
        var contributors = new List<Peer> { current };
        var next = new Queue<Peer>(spares);
        var stream = await winner.Response.Content.ReadAsStreamAsync(aborted);
        HttpResponseMessage? resumed = null;
        try
        {
            while (position < end)
            {
                var want = (int)Math.Min(ChunkSize, end - position);
                var memory = writer.GetMemory(want)[..want];
                int read;
                string? failure = null;
                using (var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(aborted))
                {
                    readTimeout.CancelAfter(mirror.ReadTimeout);
                    try
                    {
                        read = await stream.ReadAsync(memory, readTimeout.Token);
                        if (read == 0)
                        {
                            failure = "the peer closed the body early";
                            mirror.Metrics.PeerFailed(PeerFailureKind.Reset);
                        }
                    }
                    catch (Exception ex) when (!aborted.IsCancellationRequested && ex is IOException or HttpRequestException or OperationCanceledException)
                    {
                        read = 0;
                        failure = ex is OperationCanceledException ? "the peer stalled" : ex.Message;
                        mirror.Metrics.PeerFailed(RegistryMetrics.Classify(ex));
                    }
                }

                if (failure is not null)
                {
                    // Nothing of this chunk was advanced: the next peer's bytes land in the same place.
                    (stream, resumed, current) = await ResumeAsync(next, current, position, end, failure, resumed, aborted);
                    if (stream is null)
                    {
                        mirror.ReportTransferFailed(digest.ToString(), position, failure);
                        httpContext.Abort();
                        return;
                    }

                    contributors.Add(current);
                    continue;
                }

                position += read;
                if (hash is not null)
                {
                    hash.AppendData(memory.Span[..read]);
                    if (position == end)
                    {
                        var actual = digest.Algorithm == Digest.Sha512 ? Digest.FromSha512Bytes(hash.GetHashAndReset()) : Digest.FromSha256Bytes(hash.GetHashAndReset());
                        if (actual != digest)
                        {
                            mirror.ReportMismatch(contributors, digest);
                            httpContext.Abort();
                            return;
                        }
                    }
                }

                writer.Advance(read);
                var flushed = await writer.FlushAsync(aborted);
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    return;
                }
            }
        }
        finally
        {
            if (stream is not null)
            {
                await stream.DisposeAsync();
            }

            resumed?.Dispose();
        }
    }

    private async Task<(Stream? Stream, HttpResponseMessage? Response, Peer Peer)> ResumeAsync(
        Queue<Peer> next, Peer failed, long position, long end, string failure, HttpResponseMessage? previous, CancellationToken aborted)
    {
        previous?.Dispose();
        while (next.TryDequeue(out var peer))
        {
            mirror.ReportResume(failed, peer, position, failure);
            HttpResponseMessage? response = null;
            try
            {
                using var request = MirrorService.BuildRequest(peer, path, HttpMethod.Get, null, position, end - 1);
                response = await mirror.SendToPeerAsync(request, aborted);
                if (response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From == position)
                {
                    return (await response.Content.ReadAsStreamAsync(aborted), response, peer);
                }

                mirror.Metrics.PeerFailed(PeerFailureKind.Status);
            }
            catch (Exception ex) when (!aborted.IsCancellationRequested && ex is IOException or HttpRequestException or OperationCanceledException)
            {
                failure = ex.Message;
                mirror.Metrics.PeerFailed(RegistryMetrics.Classify(ex));
            }

            response?.Dispose();
            failed = peer;
        }

        return (null, null, failed);
    }
}
