using System.Buffers;
using Grpc.Core;
using Spegel.Core;
using ContentApi = Spegel.Containerd.Api.Content;

namespace Spegel.Containerd;

/// <summary>
/// Forward-only stream over one <c>Content.Read</c> server stream. Holds at most one chunk (containerd sends
/// 32 KiB messages) and hands out slices of it without copying the chunk first.
/// </summary>
internal sealed class ContentReadStream : Stream
{
    private readonly ContainerdClient _client;
    private readonly Digest _digest;
    private readonly long _offset;
    private readonly long? _length;
    private readonly CancellationTokenSource _lifetime = new();
    private AsyncServerStreamingCall<ContentApi.ReadContentResponse>? _call;
    private ReadOnlyMemory<byte> _chunk;
    private long _read;
    private bool _ended;
    private bool _disposed;

    public ContentReadStream(ContainerdClient client, Digest digest, long offset, long? length)
    {
        _client = client;
        _digest = digest;
        _offset = offset;
        _length = length;
    }

    public override bool CanRead => !_disposed;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (_chunk.IsEmpty)
        {
            if (_ended || _length is { } wanted && _read >= wanted)
            {
                return 0;
            }

            await NextChunkAsync(cancellationToken).ConfigureAwait(false);
        }

        var count = Math.Min(buffer.Length, _chunk.Length);
        _chunk[..count].CopyTo(buffer);
        _chunk = _chunk[count..];
        _read += count;
        return count;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // Synchronous reads block on the gRPC stream; prefer ReadAsync/CopyToAsync.
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var rented = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            var n = ReadAsync(rented.AsMemory(0, buffer.Length)).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _lifetime.Cancel();
            _call?.Dispose();
            _lifetime.Dispose();
        }

        base.Dispose(disposing);
    }

    private async Task NextChunkAsync(CancellationToken cancellationToken)
    {
        try
        {
            _call ??= _client.StartRead(_digest, _offset, _length, _lifetime.Token);
            if (!await _call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                _ended = true;
                if (_length is { } wanted && _read < wanted)
                {
                    throw new EndOfStreamException($"content {_digest} ended after {_read} of the {wanted} bytes requested from offset {_offset}");
                }

                return;
            }
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.OutOfRange)
        {
            throw new IOException($"offset {_offset} is past the end of content {_digest}", ex);
        }
        catch (RpcException ex)
        {
            throw _client.Translate(ex, cancellationToken, _digest);
        }

        var message = _call.ResponseStream.Current;

        // containerd 1.6 tags each chunk with its offset relative to the requested one (absolute would be the
        // documented meaning, so accept both); a gap would silently corrupt the blob.
        if (message.Offset != _read && message.Offset != _offset + _read)
        {
            throw new IOException($"content {_digest}: expected the chunk at {_read} bytes past offset {_offset}, got one at {message.Offset}");
        }

        _chunk = message.Data.Memory;
    }
}
