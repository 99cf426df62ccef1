using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spegel.Core;

namespace Spegel.TestRig;

/// <summary>
/// Writes an OCI image layout directory by hand (faster and more predictable than umoci): random gzip tar layers
/// streamed straight to disk with both digests computed on the way, configs, manifests, indexes, and the tagged
/// <c>index.json</c> that skopeo's <c>oci:</c> transport reads.
/// </summary>
internal sealed class OciLayout
{
    private static readonly DateTimeOffset FixedTime = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public OciLayout(string directory)
    {
        Directory = directory;
        BlobDirectory = Path.Combine(directory, "blobs", "sha256");
        System.IO.Directory.CreateDirectory(BlobDirectory);
        File.WriteAllText(Path.Combine(directory, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
    }

    public string Directory { get; }

    private string BlobDirectory { get; }

    /// <summary>A gzip layer holding one file of <paramref name="size"/> random bytes. Returns the blob descriptor and the diff id.</summary>
    public async Task<(Descriptor Blob, Digest DiffId)> WriteRandomLayerAsync(long size, CancellationToken ct)
    {
        var temp = Path.Combine(BlobDirectory, $"tmp-{Guid.NewGuid():N}");
        Digest compressedDigest;
        Digest diffId;
        long compressedSize;
        await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            using var compressedHash = new HashingWriteStream(file);
            using var uncompressedHash = new HashingWriteStream(null);

            // Random bytes do not compress; NoCompression keeps generating a 100 MiB layer fast, and is still valid gzip.
            await using (var gzip = new GZipStream(compressedHash, CompressionLevel.NoCompression, leaveOpen: true))
            {
                using var tee = new TeeWriteStream(gzip, uncompressedHash);
                await using (var tar = new TarWriter(tee, TarEntryFormat.Ustar, leaveOpen: true))
                {
                    var dir = new UstarTarEntry(TarEntryType.Directory, "spegel/") { ModificationTime = FixedTime, Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute };
                    await tar.WriteEntryAsync(dir, ct).ConfigureAwait(false);
                    await using var data = new RandomReadStream(size);
                    var entry = new UstarTarEntry(TarEntryType.RegularFile, $"spegel/{Guid.NewGuid():N}.bin")
                    {
                        ModificationTime = FixedTime,
                        Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                        DataStream = data,
                    };
                    await tar.WriteEntryAsync(entry, ct).ConfigureAwait(false);
                }
            }

            compressedDigest = compressedHash.GetDigest();
            compressedSize = compressedHash.Length;
            diffId = uncompressedHash.GetDigest();
        }

        File.Move(temp, Path.Combine(BlobDirectory, compressedDigest.Hex), overwrite: true);
        return (new Descriptor(MediaTypes.OciLayerGzip, compressedDigest, compressedSize), diffId);
    }

    public Descriptor WriteBlob(ReadOnlySpan<byte> content, string mediaType)
    {
        var digest = Digest.ComputeSha256(content);
        File.WriteAllBytes(Path.Combine(BlobDirectory, digest.Hex), content.ToArray());
        return new Descriptor(mediaType, digest, content.Length);
    }

    public Descriptor WriteJson(JsonNode node, string mediaType) =>
        WriteBlob(JsonSerializer.SerializeToUtf8Bytes(node), mediaType);

    public Descriptor WriteConfig(Platform platform, IEnumerable<Digest> diffIds) =>
        WriteJson(
            new JsonObject
            {
                ["created"] = FixedTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
                ["architecture"] = platform.Architecture,
                ["os"] = platform.Os,
                ["variant"] = platform.Variant,
                ["config"] = new JsonObject { ["Env"] = new JsonArray("PATH=/usr/bin:/bin"), ["Labels"] = new JsonObject { ["spegel.test"] = Guid.NewGuid().ToString("N") } },
                ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(diffIds.Select(d => (JsonNode)JsonValue.Create(d.ToString())!).ToArray()) },
            }.RemoveNulls(),
            MediaTypes.OciConfig);

    public Descriptor WriteManifest(Descriptor config, IEnumerable<Descriptor> layers) =>
        WriteJson(
            new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = MediaTypes.OciManifest,
                ["config"] = ToJson(config),
                ["layers"] = new JsonArray(layers.Select(l => (JsonNode)ToJson(l)).ToArray()),
            },
            MediaTypes.OciManifest);

    public Descriptor WriteIndex(IEnumerable<Descriptor> manifests) =>
        WriteJson(
            new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = MediaTypes.OciIndex,
                ["manifests"] = new JsonArray(manifests.Select(m => (JsonNode)ToJson(m)).ToArray()),
            },
            MediaTypes.OciIndex);

    /// <summary>Writes the layout's <c>index.json</c> naming <paramref name="root"/> as <paramref name="tag"/>.</summary>
    public void Tag(Descriptor root, string tag)
    {
        var entry = ToJson(root);
        entry["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = tag };
        var index = new JsonObject { ["schemaVersion"] = 2, ["manifests"] = new JsonArray(entry) };
        File.WriteAllBytes(Path.Combine(Directory, "index.json"), JsonSerializer.SerializeToUtf8Bytes(index));
    }

    private static JsonObject ToJson(Descriptor d)
    {
        var json = new JsonObject { ["mediaType"] = d.MediaType, ["digest"] = d.Digest.ToString(), ["size"] = d.Size };
        if (d.Platform is { } p)
        {
            json["platform"] = new JsonObject { ["architecture"] = p.Architecture, ["os"] = p.Os, ["variant"] = p.Variant }.RemoveNulls();
        }

        return json;
    }
}

internal static class JsonObjectExtensions
{
    public static JsonObject RemoveNulls(this JsonObject json)
    {
        foreach (var key in json.Where(p => p.Value is null).Select(p => p.Key).ToList())
        {
            json.Remove(key);
        }

        return json;
    }
}

/// <summary>Passes writes through to an inner stream (or nowhere) while hashing them with sha256.</summary>
internal sealed class HashingWriteStream(Stream? inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _length;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => _length;

    public override long Position
    {
        get => _length;
        set => throw new NotSupportedException();
    }

    public Digest GetDigest() => Digest.FromSha256Bytes(_hash.GetCurrentHash());

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        _length += buffer.Length;
        inner?.Write(buffer);
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _hash.AppendData(buffer.Span);
        _length += buffer.Length;
        if (inner is not null)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => inner?.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner?.FlushAsync(cancellationToken) ?? Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>Writes to a primary stream and a second one (here: gzip, and the diff-id hash of the uncompressed tar).</summary>
internal sealed class TeeWriteStream(Stream primary, Stream secondary) : Stream
{
    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        primary.Write(buffer);
        secondary.Write(buffer);
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await primary.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        await secondary.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
        primary.Flush();
        secondary.Flush();
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>A read-once stream of <c>length</c> cryptographically random bytes, never held in memory at once.</summary>
internal sealed class RandomReadStream(long length) : Stream
{
    private long _position;

    public override bool CanRead => true;

    // Seekable only so that TarWriter can learn the length up front; the position can only be "set" to where it is.
    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position
    {
        get => _position;
        set
        {
            if (value != _position)
            {
                throw new NotSupportedException("Random content cannot be re-read.");
            }
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = (int)Math.Min(buffer.Length, length - _position);
        RandomNumberGenerator.Fill(buffer[..n]);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override long Seek(long offset, SeekOrigin origin)
    {
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };
        Position = target;
        return _position;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
