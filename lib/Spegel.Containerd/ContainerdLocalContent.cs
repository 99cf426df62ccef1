using Spegel.Core;
using Spegel.Core.Content;

namespace Spegel.Containerd;

/// <summary>The node's containerd as the registry's <see cref="ILocalContent"/>.</summary>
public sealed class ContainerdLocalContent(ContainerdClient client, PrivateContentPolicy? privacy = null) : ILocalContent
{
    // containerd labels a manifest or index with references to its children for garbage collection
    // (gc.ref.content.config, .l.N, .m.N); configs and layers never carry these.
    private const string ChildContentLabelPrefix = "containerd.io/gc.ref.content.";

    public async Task<Descriptor?> ResolveTagAsync(Reference reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var image = await Translate(() => client.GetImageAsync(reference.ToString(), cancellationToken));
        return image?.Target;
    }

    public async Task<LocalContentInfo?> GetInfoAsync(Digest digest, CancellationToken cancellationToken)
    {
        var info = await Translate(() => client.GetContentInfoAsync(digest, cancellationToken));
        if (info is null)
        {
            return null;
        }

        var isManifest = info.Labels.Keys.Any(k => k.StartsWith(ChildContentLabelPrefix, StringComparison.Ordinal));
        return new LocalContentInfo(info.Digest, info.Size, isManifest, privacy?.IsPrivate(info.Labels) ?? false);
    }

    public Task<byte[]?> ReadAllAsync(Digest digest, long maxBytes, CancellationToken cancellationToken) =>
        Translate(() => client.ReadAllAsync(digest, maxBytes, cancellationToken));

    public string? GetFilePath(Digest digest) => client.GetContentFilePath(digest);

    public Stream OpenRead(Digest digest, long offset) => client.OpenRead(digest, offset);

    private static async Task<T> Translate<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (ContainerdUnavailableException ex)
        {
            throw new ContentStoreUnavailableException(ex.Message, ex);
        }
    }
}
