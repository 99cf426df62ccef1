using System.Collections.Concurrent;
using Spegel.Core;

namespace Spegel.Registry.Mirror;

/// <summary>
/// Manifests fetched from peers and verified, kept briefly by digest. containerd resolves a tag with a HEAD and then
/// always GETs the manifest by the digest it was told; the mirror answers that HEAD with a verified GET from the peer
/// and keeps the bytes here, so the GET that follows costs no second lookup and no second peer round trip. Safe to
/// serve for as long as it is kept: the bytes are checked against the digest that addresses them. Bounded in entries
/// and bytes; entries expire after <see cref="MirrorOptions.MirrorManifestCacheTtl"/>.
/// </summary>
public sealed class ManifestCache(TimeProvider time)
{
    internal const int MaxEntries = 256;
    internal const long MaxBytes = 32L * 1024 * 1024;

    private readonly ConcurrentDictionary<Digest, CachedManifest> entries = new();
    private long bytes;

    public int Count => entries.Count;

    public void Add(Digest digest, CachedManifest manifest, TimeSpan ttl)
    {
        if (ttl <= TimeSpan.Zero)
        {
            return;
        }

        var now = time.GetUtcNow();
        if (entries.Count >= MaxEntries || Interlocked.Read(ref bytes) + manifest.Body.Length > MaxBytes)
        {
            Trim(now);
            if (entries.Count >= MaxEntries || Interlocked.Read(ref bytes) + manifest.Body.Length > MaxBytes)
            {
                return;
            }
        }

        var entry = manifest with { Expires = now + ttl };
        entries.AddOrUpdate(
            digest,
            _ =>
            {
                Interlocked.Add(ref bytes, entry.Body.Length);
                return entry;
            },
            (_, old) =>
            {
                Interlocked.Add(ref bytes, entry.Body.Length - old.Body.Length);
                return entry;
            });
    }

    public bool TryGet(Digest digest, out CachedManifest manifest)
    {
        if (entries.TryGetValue(digest, out manifest!) && manifest.Expires > time.GetUtcNow())
        {
            return true;
        }

        manifest = null!;
        return false;
    }

    private void Trim(DateTimeOffset now)
    {
        foreach (var (digest, entry) in entries)
        {
            if (entry.Expires <= now && entries.TryRemove(new KeyValuePair<Digest, CachedManifest>(digest, entry)))
            {
                Interlocked.Add(ref bytes, -entry.Body.Length);
            }
        }
    }
}

/// <summary>A verified manifest: its bytes, the media type the peer sent, and which peer it came from (for the request log).</summary>
public sealed record CachedManifest(byte[] Body, string MediaType, string Node)
{
    public DateTimeOffset Expires { get; init; }
}
