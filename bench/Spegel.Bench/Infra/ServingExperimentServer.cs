using System.Buffers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Spegel.Bench.Infra;

/// <summary>
/// A minimal Kestrel file server with three ways to send one file, run as its own process by benchmark G
/// (<c>Spegel.Bench __serve URL FILE slim|full</c>): what the registry does today, and two cheaper alternatives.
/// Experiment code only; it measures what a change to the registry would buy before anyone makes it.
/// </summary>
public static class ServingExperimentServer
{
    public const string Command = "__serve";

    private const int ChunkSize = 256 * 1024;

    /// <summary>Query parameter of the proxy endpoints: the URL to fetch from (a peer registry's blob URL).</summary>
    public const string FromParameter = "from";

    public static async Task<int> RunAsync(string url, string file, bool slim)
    {
        var builder = slim ? WebApplication.CreateSlimBuilder() : WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(url);
        var app = builder.Build();
        var length = new FileInfo(file).Length;

        app.MapGet("/healthz", () => Results.Ok());

        // 1. What the registry does: Results.File → Kestrel's SendFileAsync fallback (64 KiB FileStream reads, then a
        //    copy into the response pipe, then the socket write).
        app.MapGet("/file", () => Results.File(file, "application/octet-stream", enableRangeProcessing: true));

        // 2. Read straight into the response pipe's own memory (one copy fewer), 256 KiB at a time, with a plain
        //    positional read (a page-cache hit does not need a thread-pool hop).
        app.MapGet("/pipe", async (HttpContext context) =>
        {
            var response = context.Response;
            response.ContentType = "application/octet-stream";
            response.ContentLength = length;
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            var writer = response.BodyWriter;
            long offset = 0;
            while (offset < length)
            {
                var memory = writer.GetMemory(ChunkSize);
                var read = RandomAccess.Read(handle, memory.Span[..(int)Math.Min(memory.Length, length - offset)], offset);
                if (read == 0)
                {
                    break;
                }

                writer.Advance(read);
                offset += read;
                var flushed = await writer.FlushAsync(context.RequestAborted);
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    break;
                }
            }
        });

        // 3. The same copy path as today but with 1 MiB reads and writes: what the buffer size alone changes.
        app.MapGet("/stream", async (HttpContext context) =>
        {
            var response = context.Response;
            response.ContentType = "application/octet-stream";
            response.ContentLength = length;
            await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            var buffer = ArrayPool<byte>.Shared.Rent(1024 * 1024);
            try
            {
                int read;
                while ((read = await stream.ReadAsync(buffer.AsMemory(0, 1024 * 1024), context.RequestAborted)) > 0)
                {
                    await response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        });

        // Proxy experiments (what node 2's mirror does per blob): fetch from a peer, SHA-256 the bytes, send them on.
        // Both hold the last chunk until the digest is known, as the registry must.
        using var peers = new HttpClient(new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = System.Net.DecompressionMethods.None })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };

        // 4. Today's shape (MirroredBlobResult): read 128 KiB into a pooled buffer, hash, write the previous chunk to
        //    Response.Body (a copy into the pipe), keep the newest one back.
        app.MapGet("/proxy-stream", async (HttpContext context) =>
        {
            using var upstream = await SendAsync(peers, context);
            var response = context.Response;
            response.ContentType = "application/octet-stream";
            response.ContentLength = upstream.Content.Headers.ContentLength;
            await using var body = await upstream.Content.ReadAsStreamAsync(context.RequestAborted);
            using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            var buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
            var held = ArrayPool<byte>.Shared.Rent(128 * 1024);
            var heldCount = 0;
            try
            {
                int read;
                while ((read = await body.ReadAsync(buffer.AsMemory(0, 128 * 1024), context.RequestAborted)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    if (heldCount > 0)
                    {
                        await response.Body.WriteAsync(held.AsMemory(0, heldCount), context.RequestAborted);
                    }

                    (buffer, held, heldCount) = (held, buffer, read);
                }

                _ = hash.GetHashAndReset();
                await response.Body.WriteAsync(held.AsMemory(0, heldCount), context.RequestAborted);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
                ArrayPool<byte>.Shared.Return(held);
            }
        });

        // 5. Read from the peer straight into the response pipe's memory, hash in place, flush everything but the last
        //    chunk; the last one is flushed once the digest is known (abort before flushing it when it is wrong).
        app.MapGet("/proxy-pipe", (HttpContext context) => ProxyPipeAsync(peers, context, hashBytes: true));

        // 6. The same without hashing: what the SHA-256 itself costs.
        app.MapGet("/proxy-pipe-nohash", (HttpContext context) => ProxyPipeAsync(peers, context, hashBytes: false));

        await app.RunAsync();
        return 0;
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient peers, HttpContext context)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, context.Request.Query[FromParameter].ToString());
        request.Headers.TryAddWithoutValidation("X-Spegel-Mirrored", "true");
        var upstream = await peers.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        upstream.EnsureSuccessStatusCode();
        return upstream;
    }

    private static async Task ProxyPipeAsync(HttpClient peers, HttpContext context, bool hashBytes)
    {
        using var upstream = await SendAsync(peers, context);
        var response = context.Response;
        var length = upstream.Content.Headers.ContentLength ?? throw new InvalidOperationException("no Content-Length from the peer");
        response.ContentType = "application/octet-stream";
        response.ContentLength = length;
        await using var body = await upstream.Content.ReadAsStreamAsync(context.RequestAborted);
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var writer = response.BodyWriter;
        long position = 0;
        while (position < length)
        {
            var memory = writer.GetMemory(128 * 1024);
            var read = await body.ReadAsync(memory[..(int)Math.Min(memory.Length, length - position)], context.RequestAborted);
            if (read == 0)
            {
                context.Abort();
                return;
            }

            if (hashBytes)
            {
                hash.AppendData(memory.Span[..read]);
            }

            writer.Advance(read);
            position += read;
            if (position < length)
            {
                await writer.FlushAsync(context.RequestAborted);
            }
        }

        _ = hash.GetHashAndReset();
        await writer.FlushAsync(context.RequestAborted);
    }
}
