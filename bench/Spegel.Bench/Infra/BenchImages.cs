using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spegel.Core;
using Spegel.TestRig;

namespace Spegel.Bench.Infra;

/// <summary>An image pushed for a benchmark: its reference parts and every digest a pull fetches.</summary>
public sealed record BenchImage(string Registry, string Repository, string Tag, Descriptor Manifest, Descriptor Config, IReadOnlyList<Descriptor> Layers)
{
    public string Reference => $"{Registry}/{Repository}:{Tag}";

    public IReadOnlyList<Descriptor> Blobs => [Manifest, Config, .. Layers];

    public long TotalSize => Blobs.Sum(b => b.Size);

    public Descriptor LargestLayer => Layers.MaxBy(l => l.Size)!;
}

/// <summary>
/// Builds images of N layers of random bytes (uncompressed tar: what is measured is moving bytes, not gzip) as an OCI
/// layout and pushes them with skopeo. The rig's TestImages makes at most one large layer; a pull benchmark needs several.
/// </summary>
public static class BenchImages
{
    private static readonly DateTimeOffset FixedTime = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static async Task<BenchImage> BuildAsync(UpstreamRegistry registry, string repository, string tag, IReadOnlyList<long> layerSizes, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(layerSizes);
        var dir = RigDirectory.Create("bimg");
        try
        {
            var blobs = Path.Combine(dir, "blobs", "sha256");
            Directory.CreateDirectory(blobs);
            await File.WriteAllTextAsync(Path.Combine(dir, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""", ct);
            var layers = new List<Descriptor>();
            foreach (var size in layerSizes)
            {
                layers.Add(await WriteLayerAsync(blobs, size, ct));
            }

            var config = WriteJson(blobs, MediaTypes.OciConfig, new JsonObject
            {
                ["created"] = "2024-01-01T00:00:00Z",
                ["architecture"] = TestImages.NativePlatform.Architecture,
                ["os"] = TestImages.NativePlatform.Os,
                ["config"] = new JsonObject { ["Labels"] = new JsonObject { ["spegel.bench"] = Guid.NewGuid().ToString("N") } },
                ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(layers.Select(l => (JsonNode)JsonValue.Create(l.Digest.ToString())!).ToArray()) },
            });
            var manifest = WriteJson(blobs, MediaTypes.OciManifest, new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = MediaTypes.OciManifest,
                ["config"] = ToJson(config),
                ["layers"] = new JsonArray(layers.Select(l => (JsonNode)ToJson(l)).ToArray()),
            });
            var entry = ToJson(manifest);
            entry["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = tag };
            await File.WriteAllBytesAsync(Path.Combine(dir, "index.json"), JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["schemaVersion"] = 2, ["manifests"] = new JsonArray(entry) }), ct);

            var push = await ProcessRunner.RunAsync(
                RequiredTools.Skopeo,
                ["--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests", $"oci:{dir}:{tag}", $"docker://{registry.Host}/{repository}:{tag}"],
                TimeSpan.FromMinutes(5),
                dir,
                ct);
            push.EnsureSuccess();
            return new BenchImage(registry.Host, repository, tag, manifest, config, layers);
        }
        finally
        {
            await RigDirectory.RemoveAsync(dir);
        }
    }

    /// <summary>A tar holding one file of random bytes, sized so the whole tar is close to <paramref name="size"/>.</summary>
    private static async Task<Descriptor> WriteLayerAsync(string blobs, long size, CancellationToken ct)
    {
        var temp = Path.Combine(blobs, $"tmp-{Guid.NewGuid():N}");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long length;
        await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true))
        {
            await using var hashing = new HashingStream(file, hash);
            await using (var tar = new TarWriter(hashing, TarEntryFormat.Ustar, leaveOpen: true))
            {
                // Tar overhead: a 512-byte header, padding to 512, two zero blocks at the end, and the 10 KiB record rounding.
                var payload = Math.Max(0, size - 512 - 1024 - 10240);
                await using var data = new RandomStream(payload);
                var entry = new UstarTarEntry(TarEntryType.RegularFile, $"bench/{Guid.NewGuid():N}.bin")
                {
                    ModificationTime = FixedTime,
                    Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                    DataStream = data,
                };
                await tar.WriteEntryAsync(entry, ct);
            }

            length = hashing.Length;
        }

        var digest = Digest.FromSha256Bytes(hash.GetHashAndReset());
        File.Move(temp, Path.Combine(blobs, digest.Hex), overwrite: true);
        return new Descriptor(MediaTypes.OciLayer, digest, length);
    }

    private static Descriptor WriteJson(string blobs, string mediaType, JsonObject json)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(json);
        var digest = Digest.ComputeSha256(bytes);
        File.WriteAllBytes(Path.Combine(blobs, digest.Hex), bytes);
        return new Descriptor(mediaType, digest, bytes.Length);
    }

    private static JsonObject ToJson(Descriptor d) => new() { ["mediaType"] = d.MediaType, ["digest"] = d.Digest.ToString(), ["size"] = d.Size };

    /// <summary>Writes through to a file while hashing.</summary>
    private sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Written;

        public override long Position
        {
            get => Written;
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash.AppendData(buffer);
            Written += buffer.Length;
            inner.Write(buffer);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            hash.AppendData(buffer.Span);
            Written += buffer.Length;
            await inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>Random bytes of a given length, generated as read (seekable only so TarWriter can learn the length).</summary>
    private sealed class RandomStream(long length) : Stream
    {
        private long position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => position;
            set
            {
                if (value != position)
                {
                    throw new NotSupportedException();
                }
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - position);
            RandomNumberGenerator.Fill(buffer[..n]);
            position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => position + offset,
                _ => length + offset,
            };
            return position;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
