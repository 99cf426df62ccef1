using System.Buffers;
using System.Security.Cryptography;
using Spegel.Core;

namespace Spegel.Registry.Mirror;

/// <summary>
/// Bounds how many blobs are held in memory for verify-before-send at once. A plain counter rather than a
/// <see cref="SemaphoreSlim"/>: only a non-blocking try is needed (when no slot is free the blob streams), and a
/// counter has nothing to dispose, so a request finishing during shutdown cannot release into a disposed object.
/// </summary>
internal sealed class VerifySlots(int capacity)
{
    private int inUse;

    /// <summary>Slots taken right now (for tests: zero once every request finished).</summary>
    public int InUse => Volatile.Read(ref inUse);

    public VerifySlot? TryAcquire()
    {
        if (Interlocked.Increment(ref inUse) <= capacity)
        {
            return new VerifySlot(this);
        }

        Interlocked.Decrement(ref inUse);
        return null;
    }

    internal void Release() => Interlocked.Decrement(ref inUse);
}

/// <summary>One taken slot; disposing it releases the slot exactly once, whoever gets there first.</summary>
internal sealed class VerifySlot(VerifySlots owner) : IDisposable
{
    private int released;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref released, 1) == 0)
        {
            owner.Release();
        }
    }
}

/// <summary>
/// A blob body read whole from a peer into pooled chunks (never one array of the blob's size: no large-object-heap
/// allocation per blob, and the chunks go back to the pool), hashed as it was read.
/// </summary>
internal sealed class PooledBody : IDisposable
{
    // Below the 85 000-byte large-object threshold, so a chunk the shared pool drops is cheap garbage.
    private const int ChunkSize = 64 * 1024;

    private readonly List<byte[]> chunks = [];

    private PooledBody(long length) => Length = length;

    public long Length { get; }

    public Digest Digest { get; private set; }

    /// <summary>
    /// Reads exactly <paramref name="length"/> bytes. A body that ends early throws <see cref="IOException"/>; one
    /// that sends nothing for <paramref name="readTimeout"/> throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public static async Task<PooledBody> ReadAsync(HttpContent content, long length, Digest expected, TimeSpan readTimeout, CancellationToken cancellationToken)
    {
        var body = new PooledBody(length);
        try
        {
            using var hash = IncrementalHash.CreateHash(expected.Algorithm == Digest.Sha512 ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256);
            await using var stream = await content.ReadAsStreamAsync(cancellationToken);
            var position = 0L;
            while (position < length)
            {
                var chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
                body.chunks.Add(chunk);
                var size = (int)Math.Min(ChunkSize, length - position);
                var filled = 0;
                while (filled < size)
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(readTimeout);
                    var read = await stream.ReadAsync(chunk.AsMemory(filled, size - filled), timeout.Token);
                    if (read == 0)
                    {
                        throw new IOException($"the peer closed the body early, at {position + filled} of {length} bytes");
                    }

                    filled += read;
                }

                hash.AppendData(chunk, 0, size);
                position += size;
            }

            var bytes = hash.GetHashAndReset();
            body.Digest = expected.Algorithm == Digest.Sha512 ? Digest.FromSha512Bytes(bytes) : Digest.FromSha256Bytes(bytes);
            return body;
        }
        catch
        {
            body.Dispose();
            throw;
        }
    }

    public async Task WriteToAsync(Stream destination, CancellationToken cancellationToken)
    {
        var remaining = Length;
        foreach (var chunk in chunks)
        {
            var size = (int)Math.Min(ChunkSize, remaining);
            await destination.WriteAsync(chunk.AsMemory(0, size), cancellationToken);
            remaining -= size;
        }
    }

    public void Dispose()
    {
        lock (chunks)
        {
            chunks.ForEach(c => ArrayPool<byte>.Shared.Return(c));
            chunks.Clear();
        }
    }
}

/// <summary>
/// A whole blob already read from a peer and verified against its digest: headers and body are sent only now, so
/// the client never sees a byte from a peer that lied or died. Owns the pooled body and the verify slot, both
/// released when the request ends (registered for dispose), whether or not the result ever ran.
/// </summary>
internal sealed class VerifiedBlobResult(PooledBody body, VerifySlot slot, Digest digest) : IResult, IDisposable
{
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = MediaTypes.OctetStream;
        response.ContentLength = body.Length;
        response.Headers.AcceptRanges = "bytes";
        response.Headers[DistributionHandler.ContentDigestHeader] = digest.ToString();
        try
        {
            await body.WriteToAsync(response.Body, httpContext.RequestAborted);
        }
        finally
        {
            // Free the buffer and the slot as soon as the bytes are handed over, not when the request ends.
            Dispose();
        }
    }

    public void Dispose()
    {
        body.Dispose();
        slot.Dispose();
    }
}
