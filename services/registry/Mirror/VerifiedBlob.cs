using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Spegel.Core;

namespace Spegel.Registry.Mirror;

/// <summary>
/// Bounds how many blobs are held in memory for verify-before-send at once. A plain counter rather than a
/// <see cref="SemaphoreSlim"/>: only a non-blocking try is needed (when no slot is free the blob goes to the spool or
/// streams), and a counter has nothing to dispose, so a request finishing during shutdown cannot release into a
/// disposed object.
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
/// A whole blob being read from peers and hashed before any of it is sent. Bytes are appended in order, possibly
/// from several peers (a peer that dies mid-body is followed by another's Range answer from <see cref="Position"/>);
/// once <see cref="Length"/> bytes are in, the digest decides whether they are sent at all. Held in pooled memory
/// (<see cref="PooledBody"/>) or in an unlinked spool file (<see cref="SpoolBody"/>).
/// </summary>
internal abstract class VerifyBuffer : IDisposable
{
    private readonly IncrementalHash hash;
    private int disposed;

    protected VerifyBuffer(long length, Digest expected)
    {
        Length = length;
        Expected = expected;
        hash = IncrementalHash.CreateHash(expected.Algorithm == Digest.Sha512 ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256);
    }

    public long Length { get; }

    public Digest Expected { get; }

    /// <summary>How many bytes are in (and hashed); where the next peer must continue.</summary>
    public long Position { get; private set; }

    /// <summary>
    /// Reads <paramref name="source"/> until the buffer holds <see cref="Length"/> bytes. A body that ends early
    /// throws <see cref="IOException"/>; one that sends nothing for <paramref name="readTimeout"/> throws
    /// <see cref="OperationCanceledException"/>. Either way what was read stays, for a Range request to continue it.
    /// </summary>
    public async Task AppendAsync(Stream source, TimeSpan readTimeout, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);

        // One timer for the whole body, re-armed per read: not a token source per 64–256 KiB read on the blob path.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        while (Position < Length)
        {
            var target = WritableAt(Position, (int)Math.Min(int.MaxValue, Length - Position));
            timeout.CancelAfter(readTimeout);
            var read = await source.ReadAsync(target, timeout.Token);
            timeout.CancelAfter(Timeout.Infinite);
            if (read == 0)
            {
                throw new IOException($"the peer closed the body early, at {Position} of {Length} bytes");
            }

            hash.AppendData(target.Span[..read]);
            await CommitAsync(target[..read], Position, cancellationToken);
            Position += read;
        }
    }

    /// <summary>The digest of all <see cref="Length"/> bytes; call once, when <see cref="Position"/> reached it.</summary>
    public Digest Complete()
    {
        if (Position != Length)
        {
            throw new InvalidOperationException($"the buffer holds {Position} of {Length} bytes");
        }

        var bytes = hash.GetHashAndReset();
        return Expected.Algorithm == Digest.Sha512 ? Digest.FromSha512Bytes(bytes) : Digest.FromSha256Bytes(bytes);
    }

    /// <summary>Sends the verified bytes into the response body.</summary>
    public abstract Task WriteToAsync(HttpResponse response, CancellationToken cancellationToken);

    /// <summary>Where the bytes at <paramref name="position"/> are read to: at most <paramref name="max"/> long.</summary>
    protected abstract Memory<byte> WritableAt(long position, int max);

    /// <summary>Keeps bytes just read (into what <see cref="WritableAt"/> returned) at <paramref name="position"/>.</summary>
    protected abstract ValueTask CommitAsync(ReadOnlyMemory<byte> bytes, long position, CancellationToken cancellationToken);

    protected abstract void Release();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0)
        {
            hash.Dispose();
            Release();
        }
    }
}

/// <summary>
/// A small blob held in pooled 64 KiB chunks (never one array of the blob's size: no large-object-heap allocation
/// per blob, and the chunks go back to the pool). Owns one of the memory slots that bound how many are held at once.
/// </summary>
internal sealed class PooledBody(long length, Digest expected, VerifySlot slot) : VerifyBuffer(length, expected)
{
    // Below the 85 000-byte large-object threshold, so a chunk the shared pool drops is cheap garbage.
    private const int ChunkSize = 64 * 1024;

    private readonly List<byte[]> chunks = [];

    protected override Memory<byte> WritableAt(long position, int max)
    {
        var index = (int)(position / ChunkSize);
        lock (chunks)
        {
            while (chunks.Count <= index)
            {
                chunks.Add(ArrayPool<byte>.Shared.Rent(ChunkSize));
            }

            var within = (int)(position % ChunkSize);
            return chunks[index].AsMemory(within, Math.Min(ChunkSize - within, max));
        }
    }

    protected override ValueTask CommitAsync(ReadOnlyMemory<byte> bytes, long position, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public override async Task WriteToAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        var remaining = Length;
        foreach (var chunk in chunks)
        {
            var size = (int)Math.Min(ChunkSize, remaining);
            await response.Body.WriteAsync(chunk.AsMemory(0, size), cancellationToken);
            remaining -= size;
        }
    }

    protected override void Release()
    {
        lock (chunks)
        {
            chunks.ForEach(c => ArrayPool<byte>.Shared.Return(c));
            chunks.Clear();
        }

        slot.Dispose();
    }
}

/// <summary>
/// A large blob held in a spool file that was unlinked as soon as it was created: only this open handle keeps its
/// blocks, so nothing is left on disk however the process ends. Reads from the peer go through one pooled 256 KiB
/// buffer into the file; the verified blob is then sent from the file (normally still in the page cache) straight
/// into the response pipe, as local blobs are. Owns its reservation of the spool's byte budget.
/// </summary>
internal sealed class SpoolBody(long length, Digest expected, SafeFileHandle file, IDisposable reservation) : VerifyBuffer(length, expected)
{
    private const int ChunkSize = 256 * 1024;

    private byte[]? scratch = ArrayPool<byte>.Shared.Rent(ChunkSize);

    protected override Memory<byte> WritableAt(long position, int max) =>
        (scratch ?? throw new ObjectDisposedException(nameof(SpoolBody))).AsMemory(0, Math.Min(ChunkSize, max));

    protected override ValueTask CommitAsync(ReadOnlyMemory<byte> bytes, long position, CancellationToken cancellationToken) =>
        RandomAccess.WriteAsync(file, bytes, position, cancellationToken);

    public override async Task WriteToAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        if (!await FileBody.SendAsync(file, Length, response.BodyWriter, cancellationToken))
        {
            throw new IOException($"the spool file ended before {Length} bytes");
        }
    }

    protected override void Release()
    {
        file.Dispose();
        if (Interlocked.Exchange(ref scratch, null) is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        reservation.Dispose();
    }
}

/// <summary>
/// A whole blob already read from peers and verified against its digest: headers and body are sent only now, so
/// the client never sees a byte from a peer that lied or died. Owns the buffer, released when the bytes are handed
/// over or when the request ends (registered for dispose), whether or not the result ever ran.
/// </summary>
internal sealed class VerifiedBlobResult(VerifyBuffer body, Digest digest) : IResult, IDisposable
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
            await body.WriteToAsync(response, httpContext.RequestAborted);
        }
        finally
        {
            // Free the buffer and its slot or spool budget as soon as the bytes are handed over.
            Dispose();
        }
    }

    public void Dispose() => body.Dispose();
}
