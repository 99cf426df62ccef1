using System.Security.Cryptography;

namespace Spegel.Core;

/// <summary>What a walk found: descriptors this node holds, descriptors it lacks, and what went wrong on the way.</summary>
public sealed record ImageWalkResult(IReadOnlyList<Descriptor> Present, IReadOnlyList<Descriptor> Missing, IReadOnlyList<string> Errors);

/// <summary>
/// Walks an image from its root (index or manifest) through platform manifests to configs and layers,
/// to find out which of its blobs a node can serve.
/// </summary>
public static class ImageWalker
{
    /// <summary>Index → index → manifest → layer is 3; deeper nesting is not something real images do.</summary>
    public const int MaxDepth = 4;

    /// <summary>Bounds the work a hostile or broken image can cause.</summary>
    public const int MaxDescriptors = 10_000;

    /// <summary>Walks without a presence check for configs and layers: every one reached counts as present.</summary>
    public static Task<ImageWalkResult> WalkAsync(
        Descriptor root,
        Func<Descriptor, CancellationToken, ValueTask<ReadOnlyMemory<byte>?>> fetch,
        CancellationToken cancellationToken) =>
        WalkAsync(root, fetch, exists: null, cancellationToken);

    /// <summary>
    /// Walks the image. <paramref name="fetch"/> returns a manifest's bytes, or null when this node does not
    /// have it (it goes to Missing and its children are not walked, as a node usually holds one platform).
    /// <paramref name="exists"/> answers for configs and layers; without it they count as present.
    /// Each digest is visited once, which both de-duplicates shared layers and stops cycles.
    /// Exceptions from the callbacks, including cancellation, propagate.
    /// </summary>
    public static async Task<ImageWalkResult> WalkAsync(
        Descriptor root,
        Func<Descriptor, CancellationToken, ValueTask<ReadOnlyMemory<byte>?>> fetch,
        Func<Descriptor, CancellationToken, ValueTask<bool>>? exists,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(fetch);

        var walk = new Walk(fetch, exists);
        await walk.VisitAsync(root, 0, cancellationToken).ConfigureAwait(false);
        return new ImageWalkResult(walk.Present, walk.Missing, walk.Errors);
    }

    private sealed class Walk(
        Func<Descriptor, CancellationToken, ValueTask<ReadOnlyMemory<byte>?>> fetch,
        Func<Descriptor, CancellationToken, ValueTask<bool>>? exists)
    {
        private readonly HashSet<Digest> _seen = [];
        private bool _truncated;

        public List<Descriptor> Present { get; } = [];

        public List<Descriptor> Missing { get; } = [];

        public List<string> Errors { get; } = [];

        public async Task VisitAsync(Descriptor descriptor, int depth, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_truncated)
            {
                return;
            }

            if (depth > MaxDepth)
            {
                Errors.Add($"{descriptor.Digest}: nested deeper than {MaxDepth} levels, not walked");
                return;
            }

            if (!_seen.Add(descriptor.Digest))
            {
                return;
            }

            if (_seen.Count > MaxDescriptors)
            {
                _truncated = true;
                Errors.Add($"image has more than {MaxDescriptors} descriptors; walk stopped");
                return;
            }

            if (!MediaTypes.IsManifest(descriptor.MediaType))
            {
                var present = exists is null || await exists(descriptor, cancellationToken).ConfigureAwait(false);
                (present ? Present : Missing).Add(descriptor);
                return;
            }

            if (await fetch(descriptor, cancellationToken).ConfigureAwait(false) is not { } content)
            {
                Missing.Add(descriptor);
                return;
            }

            // Content that is not what the parent describes (corrupt, or a fetch bug) is neither advertised nor followed.
            if (content.Length != descriptor.Size || !HasDigest(content.Span, descriptor.Digest))
            {
                Errors.Add($"{descriptor.Digest}: fetched content does not match the descriptor's size or digest");
                return;
            }

            Present.Add(descriptor);
            var parsed = ManifestParser.Parse(descriptor.MediaType, content.Span);
            if (!parsed.IsSuccess)
            {
                Errors.Add($"{descriptor.Digest}: {parsed.Error}");
                return;
            }

            foreach (var child in parsed.Children)
            {
                await VisitAsync(child, depth + 1, cancellationToken).ConfigureAwait(false);
            }
        }

        private static bool HasDigest(ReadOnlySpan<byte> content, Digest digest) => digest.Algorithm switch
        {
            Digest.Sha256 => Digest.FromSha256Bytes(SHA256.HashData(content)) == digest,
            Digest.Sha512 => Digest.FromSha512Bytes(SHA512.HashData(content)) == digest,
            _ => false,
        };
    }
}
