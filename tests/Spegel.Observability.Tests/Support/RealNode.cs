using Spegel.TestRig;

namespace Spegel.Observability.Tests.Support;

// The real-process cluster (built services run as `dotnet Spegel.*.dll`, containerd instances of the rig) shared by
// RealProcessMetricsTests and RealClusterPageBrowserTests.

/// <summary>
/// Two real nodes and a resolver under one rig directory, and the first step both tests take: node-1 pulls through
/// its registry (a miss, so from the upstream) and advertises what landed.
/// </summary>
internal sealed class RealCluster : IAsyncDisposable
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(15) };
    private readonly List<IAsyncDisposable> owned = [];

    public SpegelServiceProcess Resolver { get; private set; } = null!;

    public RealNode Node1 { get; private set; } = null!;

    public RealNode Node2 { get; private set; } = null!;

    public static async Task<RealCluster> StartAsync(string name, UpstreamRegistry upstream)
    {
        var cluster = new RealCluster();
        try
        {
            var directory = RigDirectory.Create(name);
            cluster.owned.Add(new DirectoryCleanup(directory));
            cluster.Resolver = await cluster.Own(SpegelServiceProcess.StartHealthyAsync(new SpegelServiceOptions
            {
                Service = "resolver", Name = "resolver", LogDirectory = directory, Arguments = ["--Spegel:Node:Name=resolver"],
            }));
            cluster.Node1 = await cluster.Own(RealNode.StartAsync("node-1", directory, cluster.Resolver, upstream));
            cluster.Node2 = await cluster.Own(RealNode.StartAsync("node-2", directory, cluster.Resolver, upstream));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public string Describe() => string.Join('\n', Resolver.Tail(15), Node1.Registry.Tail(15), Node1.Indexer.Tail(15), Node2.Registry.Tail(15), Node2.Indexer.Tail(15));

    /// <summary>node-1 pulls <paramref name="image"/> through its registry; returns once the resolver lists it for the last layer.</summary>
    public async Task PullOnNode1Async(TestImage image)
    {
        var first = await Node1.Containerd.PullAsync(image.Reference, Node1.HostsDirectory);
        Assert.True(first.Succeeded, $"node-1: {first}\n{Describe()}");
        var layer = image.NativeBlobs[^1];
        await Eventually.GetAsync(
            async () => await Http.GetStringAsync(new Uri($"{Resolver.Url}/v1/peers?key={layer.Digest}")),
            body => body.Contains(Node1.Registry.Url, StringComparison.Ordinal),
            "node-1 advertised the layer",
            TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = owned.Count - 1; i >= 0; i--)
        {
            await owned[i].DisposeAsync();
        }
    }

    private async Task<T> Own<T>(Task<T> starting)
        where T : IAsyncDisposable
    {
        var started = await starting;
        owned.Add(started);
        return started;
    }
}

/// <summary>Removes the test's rig directory (logs, hosts files) last, after every process in it stopped.</summary>
internal sealed class DirectoryCleanup(string path) : IAsyncDisposable
{
    public async ValueTask DisposeAsync() => await RigDirectory.RemoveAsync(path);
}

/// <summary>A node: containerd, its registry and its indexer as processes, and containerd's hosts directory pointing at the registry.</summary>
internal sealed class RealNode : IAsyncDisposable
{
    private RealNode(ContainerdInstance containerd, SpegelServiceProcess registry, SpegelServiceProcess indexer, string hostsDirectory)
    {
        Containerd = containerd;
        Registry = registry;
        Indexer = indexer;
        HostsDirectory = hostsDirectory;
    }

    public ContainerdInstance Containerd { get; }

    public SpegelServiceProcess Registry { get; }

    public SpegelServiceProcess Indexer { get; }

    public string HostsDirectory { get; }

    public static async Task<RealNode> StartAsync(string name, string directory, SpegelServiceProcess resolver, UpstreamRegistry upstream)
    {
        var containerd = await ContainerdInstance.StartAsync();
        SpegelServiceProcess? registry = null;
        try
        {
            string[] node =
            [
                $"--Spegel:Node:Name={name}", $"--Spegel:Resolver:Url={resolver.Url}", $"--Spegel:Containerd:Socket={containerd.Socket}",
                $"--Spegel:Containerd:ContentPath={containerd.ContentPath}", $"--Spegel:Containerd:Namespace={containerd.Namespace}",
            ];
            registry = await SpegelServiceProcess.StartHealthyAsync(new SpegelServiceOptions
            {
                Service = "registry", Name = name + "-registry", LogDirectory = directory,
                Arguments = [.. node, "--Spegel:Node:Address={url}", "--Spegel:MirrorResolveTimeout=00:00:05"],
            });
            var indexer = await SpegelServiceProcess.StartHealthyAsync(new SpegelServiceOptions
            {
                Service = "indexer", Name = name + "-indexer", LogDirectory = directory,
                Arguments = [.. node, $"--Spegel:Node:Address={registry.Url}", "--Spegel:Indexer:HeartbeatInterval=00:00:00.500"],
            });
            await registry.WaitForReadyAsync(TimeSpan.FromSeconds(30));
            await indexer.WaitForReadyAsync(TimeSpan.FromSeconds(30));
            var hosts = Path.Combine(directory, name, "certs.d");
            HostsDir.Write(hosts, upstream.Host, $"http://{upstream.Host}", registry.Url);
            return new RealNode(containerd, registry, indexer, hosts);
        }
        catch
        {
            if (registry is not null)
            {
                await registry.DisposeAsync();
            }

            await containerd.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Indexer.DisposeAsync();
        await Registry.DisposeAsync();
        await Containerd.DisposeAsync();
    }
}
