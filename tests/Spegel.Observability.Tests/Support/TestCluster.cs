using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Spegel.Core;
using Spegel.Core.Content;

namespace Spegel.Observability.Tests.Support;

/// <summary>An image made in memory: config, one random layer, a manifest, tagged.</summary>
public sealed class MemoryImage
{
    public MemoryImage(string reference, int layerBytes = 256 * 1024)
    {
        Reference = Core.Reference.Parse(reference);
        Layer = new byte[layerBytes];
        Random.Shared.NextBytes(Layer);
        LayerDigest = Digest.ComputeSha256(Layer);
        Config = Encoding.UTF8.GetBytes($"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}},\"x\":\"{Guid.NewGuid():N}\"}}");
        ConfigDigest = Digest.ComputeSha256(Config);
        Manifest = Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\"," +
            $"\"config\":{{\"mediaType\":\"{MediaTypes.OciConfig}\",\"digest\":\"{ConfigDigest}\",\"size\":{Config.Length}}}," +
            $"\"layers\":[{{\"mediaType\":\"{MediaTypes.OciLayerGzip}\",\"digest\":\"{LayerDigest}\",\"size\":{Layer.Length}}}]}}");
        ManifestDigest = Digest.ComputeSha256(Manifest);
    }

    public Reference Reference { get; }

    public byte[] Layer { get; }

    public Digest LayerDigest { get; }

    public byte[] Config { get; }

    public Digest ConfigDigest { get; }

    public byte[] Manifest { get; }

    public Digest ManifestDigest { get; }

    /// <summary><c>/v2/library/app/blobs/sha256:…?ns=docker.io</c>, as containerd asks a mirror.</summary>
    public string BlobPath(Digest digest) => $"/v2/{Reference.Repository}/blobs/{digest}?ns={Reference.Registry}";

    public string ManifestPath => $"/v2/{Reference.Repository}/manifests/{Reference.Tag}?ns={Reference.Registry}";
}

/// <summary>A node: its registry over in-memory content and its indexer over an in-memory watcher of the same images.</summary>
public sealed class TestNode(string name, ServiceHost registry, ServiceHost indexer, InMemoryLocalContent content, InMemoryContentWatcher watcher) : IAsyncDisposable
{
    public string Name { get; } = name;

    public ServiceHost Registry { get; } = registry;

    public ServiceHost Indexer { get; } = indexer;

    public InMemoryLocalContent Content { get; } = content;

    public InMemoryContentWatcher Watcher { get; } = watcher;

    /// <summary>What a pull leaves behind: the blobs in the content store, the image in containerd (so the indexer advertises it).</summary>
    public void Pull(MemoryImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        Content.Add(image.Layer);
        Content.Add(image.Config);
        Content.Add(image.Manifest, isManifest: true);
        Content.Tag(image.Reference, new Descriptor(MediaTypes.OciManifest, image.ManifestDigest, image.Manifest.Length));
        Watcher.Put(new ImageContent(image.Reference.ToString(), image.Reference, image.ManifestDigest, [image.ManifestDigest, image.ConfigDigest, image.LayerDigest]));
    }

    public async ValueTask DisposeAsync()
    {
        await Indexer.DisposeAsync();
        await Registry.DisposeAsync();
    }
}

/// <summary>A resolver and nodes in Standalone mode, all in this process.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    private TestCluster(ServiceHost resolver, IReadOnlyList<TestNode> nodes)
    {
        Resolver = resolver;
        Nodes = nodes;
    }

    public ServiceHost Resolver { get; }

    public IReadOnlyList<TestNode> Nodes { get; }

    public static Task<TestCluster> StartAsync(params string[] nodeNames) => StartAsync(new Dictionary<string, string?>(), nodeNames);

    /// <summary>A resolver with <paramref name="resolverSettings"/> on top of the test defaults, and the named nodes.</summary>
    public static async Task<TestCluster> StartAsync(IDictionary<string, string?> resolverSettings, params string[] nodeNames)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Spegel:Node:Name"] = "resolver",
            ["Spegel:Ui:RefreshInterval"] = "00:00:00.200",
            ["Spegel:Ui:CacheDuration"] = "00:00:00",
            ["Spegel:Ui:IndexScanInterval"] = "00:00:00",
        };
        foreach (var (key, value) in resolverSettings)
        {
            settings[key] = value;
        }

        var resolver = await ServiceHost.StartAsync("resolver", settings);
        var nodes = new List<TestNode>();
        foreach (var name in nodeNames)
        {
            nodes.Add(await StartNodeAsync(name, resolver));
        }

        return new TestCluster(resolver, nodes);
    }

    public static async Task<TestNode> StartNodeAsync(string name, ServiceHost resolver)
    {
        ArgumentNullException.ThrowIfNull(resolver);
        var content = new InMemoryLocalContent();
        var watcher = new InMemoryContentWatcher();
        var registry = await ServiceHost.StartAsync("registry", new Dictionary<string, string?>
        {
            ["Spegel:Node:Name"] = name,
            ["Spegel:Resolver:Url"] = resolver.Address,
            // As the end-to-end clusters: under a full test run a lookup plus a peer's headers can pass the product's
            // 1 s budget, and a mirror request these tests expect to be served becomes a 404. No test here measures it.
            ["Spegel:MirrorResolveTimeout"] = "00:00:05",
        }, services => services.Replace(ServiceDescriptor.Singleton<ILocalContent>(content)));
        var indexer = await ServiceHost.StartAsync("indexer", new Dictionary<string, string?>
        {
            ["Spegel:Node:Name"] = name,
            ["Spegel:Node:Address"] = registry.Address,
            ["Spegel:Resolver:Url"] = resolver.Address,
            ["Spegel:Indexer:HeartbeatInterval"] = "00:00:00.200",
        }, services => services.Replace(ServiceDescriptor.Singleton<IContentWatcher>(watcher)));
        return new TestNode(name, registry, indexer, content, watcher);
    }

    public TestNode this[string name] => Nodes.Single(n => n.Name == name);

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes)
        {
            await node.DisposeAsync();
        }

        await Resolver.DisposeAsync();
    }
}

/// <summary>Polling with a deadline instead of sleeps.</summary>
public static class Eventually
{
    public static async Task<T> GetAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(done);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        T last;
        while (true)
        {
            last = await probe();
            if (done(last))
            {
                return last;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}; last value: {last}");
            }

            await Task.Delay(50);
        }
    }
}
