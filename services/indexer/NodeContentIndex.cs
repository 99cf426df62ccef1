using Spegel.Core;
using Spegel.Core.Content;

namespace Spegel.Indexer;

/// <summary>What changed for the node as a whole when one image changed.</summary>
public sealed record NodeContentChange(
    IReadOnlyList<Digest> Added,
    IReadOnlyList<Digest> Removed,
    IReadOnlyList<Reference> TagsRemoved)
{
    public bool IsEmpty => Added.Count == 0 && Removed.Count == 0 && TagsRemoved.Count == 0;
}

/// <summary>
/// The node's images and how many of them reference each digest, so that deleting an image withdraws only the
/// digests no remaining image still uses (a base layer shared with another image stays advertised).
/// Not thread-safe: the indexer's single worker owns it.
/// </summary>
public sealed class NodeContentIndex
{
    private readonly Dictionary<string, ImageContent> images = new(StringComparer.Ordinal);
    private readonly Dictionary<Digest, int> references = [];

    public int ImageCount => images.Count;

    public int DigestCount => references.Count;

    public IEnumerable<ImageContent> Images => images.Values;

    public IEnumerable<Digest> Digests => references.Keys;

    /// <summary>Adds or replaces an image.</summary>
    public NodeContentChange Put(ImageContent image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var digests = image.Digests.Distinct().ToList();
        var heldBefore = digests.Where(references.ContainsKey).ToHashSet();
        var removed = new List<Digest>();
        if (images.TryGetValue(image.Name, out var previous))
        {
            Release(previous, removed);
        }

        images[image.Name] = image;
        foreach (var digest in digests)
        {
            references[digest] = references.GetValueOrDefault(digest) + 1;
        }

        // A digest released by the old version and taken again by the new one did not really go away.
        removed.RemoveAll(references.ContainsKey);
        return new NodeContentChange(digests.Where(d => !heldBefore.Contains(d)).ToList(), removed, []);
    }

    /// <summary>Removes an image; an unknown name changes nothing.</summary>
    public NodeContentChange Remove(string name)
    {
        if (!images.Remove(name, out var previous))
        {
            return new NodeContentChange([], [], []);
        }

        var removed = new List<Digest>();
        Release(previous, removed);
        return new NodeContentChange([], removed, previous.TagReference is { } tag ? [tag] : []);
    }

    /// <summary>Replaces everything with a fresh listing, returning the net change (a resync).</summary>
    public NodeContentChange ReplaceAll(IEnumerable<ImageContent> current)
    {
        ArgumentNullException.ThrowIfNull(current);
        var before = references.Keys.ToHashSet();
        var tagsBefore = images.Values.Where(i => i.TagReference is not null).Select(i => i.TagReference!).ToHashSet();
        images.Clear();
        references.Clear();
        foreach (var image in current)
        {
            Put(image);
        }

        var tagsNow = images.Values.Where(i => i.TagReference is not null).Select(i => i.TagReference!).ToHashSet();
        return new NodeContentChange(
            references.Keys.Where(d => !before.Contains(d)).ToList(),
            before.Where(d => !references.ContainsKey(d)).ToList(),
            tagsBefore.Where(t => !tagsNow.Contains(t)).ToList());
    }

    private void Release(ImageContent image, List<Digest> removed)
    {
        foreach (var digest in image.Digests.Distinct())
        {
            if (references.TryGetValue(digest, out var count))
            {
                if (count <= 1)
                {
                    references.Remove(digest);
                    removed.Add(digest);
                }
                else
                {
                    references[digest] = count - 1;
                }
            }
        }
    }
}
