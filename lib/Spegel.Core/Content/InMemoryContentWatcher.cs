using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Spegel.Core.Content;

/// <summary>The in-memory twin of <see cref="IContentWatcher"/>: tests add and remove images and see the events.</summary>
public sealed class InMemoryContentWatcher : IContentWatcher
{
    private readonly ConcurrentDictionary<string, ImageContent> images = new(StringComparer.Ordinal);
    private readonly List<Channel<ImageChange>> watchers = [];
    private readonly Lock gate = new();

    public void Put(ImageContent image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var existed = images.ContainsKey(image.Name);
        images[image.Name] = image;
        Notify(new ImageChange(existed ? ImageChangeKind.Updated : ImageChangeKind.Created, image.Name));
    }

    public void Delete(string name)
    {
        if (images.TryRemove(name, out _))
        {
            Notify(new ImageChange(ImageChangeKind.Deleted, name));
        }
    }

    /// <summary>Ends every open watch with an error, as a containerd restart does.</summary>
    public void Disconnect()
    {
        lock (gate)
        {
            foreach (var w in watchers)
            {
                w.Writer.TryComplete(new ContentStoreUnavailableException("in-memory watcher disconnected"));
            }

            watchers.Clear();
        }
    }

    public async IAsyncEnumerable<ImageChange> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<ImageChange>();
        lock (gate)
        {
            watchers.Add(channel);
        }

        try
        {
            await foreach (var change in channel.Reader.ReadAllAsync(cancellationToken))
            {
                yield return change;
            }
        }
        finally
        {
            lock (gate)
            {
                watchers.Remove(channel);
            }
        }
    }

    public Task<IReadOnlyList<ImageContent>> ListAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ImageContent>>(images.Values.ToList());

    public Task<ImageContent?> GetAsync(string name, CancellationToken cancellationToken) =>
        Task.FromResult(images.TryGetValue(name, out var image) ? image : null);

    private void Notify(ImageChange change)
    {
        lock (gate)
        {
            foreach (var w in watchers)
            {
                w.Writer.TryWrite(change);
            }
        }
    }
}
