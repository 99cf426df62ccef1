using System.Runtime.CompilerServices;
using Spegel.Core;
using Spegel.Core.Content;

namespace Spegel.Containerd;

/// <summary>The node's containerd as the indexer's <see cref="IContentWatcher"/>: image events, and images walked to the blobs present.</summary>
public sealed class ContainerdContentWatcher(ContainerdClient client, PrivateContentPolicy? privacy = null) : IContentWatcher
{
    private const long MaxManifestBytes = 4 * 1024 * 1024;

    public async IAsyncEnumerable<ImageChange> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var events = client.SubscribeImageEventsAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                bool more;
                try
                {
                    more = await events.MoveNextAsync();
                }
                catch (ContainerdUnavailableException ex)
                {
                    throw new ContentStoreUnavailableException(ex.Message, ex);
                }

                if (!more)
                {
                    yield break;
                }

                var e = events.Current;
                var kind = e.Type switch
                {
                    ImageEventType.Create => ImageChangeKind.Created,
                    ImageEventType.Update => ImageChangeKind.Updated,
                    _ => ImageChangeKind.Deleted,
                };
                yield return new ImageChange(kind, e.Name);
            }
        }
        finally
        {
            await events.DisposeAsync();
        }
    }

    public async Task<IReadOnlyList<ImageContent>> ListAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<ContainerdImage> images;
        try
        {
            images = await client.ListImagesAsync(cancellationToken);
        }
        catch (ContainerdUnavailableException ex)
        {
            throw new ContentStoreUnavailableException(ex.Message, ex);
        }

        var result = new List<ImageContent>(images.Count);
        foreach (var image in images)
        {
            result.Add(await WalkAsync(image, cancellationToken));
        }

        return result;
    }

    public async Task<ImageContent?> GetAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var image = await client.GetImageAsync(name, cancellationToken);
            return image is null ? null : await WalkAsync(image, cancellationToken);
        }
        catch (ContainerdUnavailableException ex)
        {
            throw new ContentStoreUnavailableException(ex.Message, ex);
        }
    }

    private async Task<ImageContent> WalkAsync(ContainerdImage image, CancellationToken cancellationToken)
    {
        var walk = await ImageWalker.WalkAsync(image.Target, FetchManifestAsync, ExistsAsync, cancellationToken);

        // Only a plain tag name is a tag reference; CRI also stores images under digest names and image IDs.
        // A private image's tag is never advertised; its blobs were already left out by the walk.
        var tag = Reference.TryParse(image.Name, out var reference) && reference.Tag is not null && reference.Digest is null
            && privacy?.IsPrivate(reference) != true && walk.Present.Any(d => d.Digest == image.Target.Digest)
            ? reference
            : null;
        return new ImageContent(image.Name, tag, image.Target.Digest, walk.Present.Select(d => d.Digest).ToList());
    }

    private async ValueTask<ReadOnlyMemory<byte>?> FetchManifestAsync(Descriptor descriptor, CancellationToken cancellationToken)
    {
        // Private manifests count as absent: neither they nor anything only they lead to is advertised.
        if (privacy is { IsEnabled: true } && await client.GetContentInfoAsync(descriptor.Digest, cancellationToken) is { } info && privacy.IsPrivate(info.Labels))
        {
            return null;
        }

        try
        {
            var bytes = await client.ReadAllAsync(descriptor.Digest, MaxManifestBytes, cancellationToken);
            return bytes is null ? null : new ReadOnlyMemory<byte>(bytes);
        }
        catch (InvalidDataException)
        {
            // Larger than any real manifest: not something this node serves as one.
            return null;
        }
    }

    private async ValueTask<bool> ExistsAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        await client.GetContentInfoAsync(descriptor.Digest, cancellationToken) is { } info && privacy?.IsPrivate(info.Labels) != true;
}
