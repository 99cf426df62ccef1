using System.Globalization;

namespace Spegel.Resolver.State;

/// <summary>
/// The resolver's keys in the state store. '|' separates the parts: it cannot occur in a digest, an image
/// reference or a node name, and Dapr reserves only '||'.
/// </summary>
public static class ResolverKeys
{
    public const string DigestPrefix = "digest|";
    public const string TagPrefix = "ref|";
    public const string NodePrefix = "node|";
    public const string IndexPrefix = "held|";

    /// <summary><c>digest|sha256:…</c>: which nodes hold (or withdrew) a blob.</summary>
    public static string Digest(string digest) => DigestPrefix + digest;

    /// <summary><c>ref|docker.io/library/nginx:1.27</c>: which digest each node resolved a tag to.</summary>
    public static string Tag(string tagKey) => TagPrefix + tagKey;

    /// <summary><c>node|name</c>: address, liveness, ordering watermark and snapshot progress of one node.</summary>
    public static string Node(string node) => NodePrefix + node;

    /// <summary><c>held|name|07</c>: one chunk of the keys a node has an entry in (so a snapshot can withdraw without scanning).</summary>
    public static string IndexChunk(string node, int chunk) => $"{IndexPrefix}{node}|{chunk.ToString("D2", CultureInfo.InvariantCulture)}";

    /// <summary>The chunk a key's index entry lives in: a stable hash (FNV-1a), the same in every process.</summary>
    public static int ChunkOf(string key, int chunks)
    {
        ArgumentNullException.ThrowIfNull(key);
        var hash = 2166136261u;
        foreach (var c in key)
        {
            hash = unchecked((hash ^ c) * 16777619u);
        }

        return (int)(hash % (uint)chunks);
    }
}
