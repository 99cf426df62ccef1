using System.Globalization;
using System.Text;
using Spegel.TestRig;

namespace Spegel.EndToEnd.Tests.Cluster;

/// <summary>
/// N nodes on one machine, each as a kubelet node would be set up: its own containerd, its own registry (and
/// indexer) on its own loopback port, a hosts directory listing its own registry first and then the upstream;
/// plus one resolver. Everything it started is stopped and removed on dispose, also when starting failed half-way.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly List<ClusterNode> _nodes = [];
    private bool _disposed;

    private LocalCluster(UpstreamRegistry upstream, LocalClusterOptions options, string directory)
    {
        Upstream = upstream;
        Options = options;
        Directory = directory;
    }

    public UpstreamRegistry Upstream { get; }

    public LocalClusterOptions Options { get; }

    /// <summary>The cluster's folder (node folders, service logs); kept with <c>SPEGEL_RIG_KEEP=1</c>.</summary>
    public string Directory { get; }

    public IReadOnlyList<ClusterNode> Nodes => _nodes;

    /// <summary>The node named <c>node-<paramref name="number"/></c> (1-based, as the names are).</summary>
    public ClusterNode Node(int number) => _nodes[number - 1];

    public SpegelServiceProcess? Resolver { get; private set; }

    public ResolverApi ResolverApi => new(Resolver?.BaseUri ?? throw new InvalidOperationException("this cluster runs no resolver"));

    /// <summary>Starts the cluster: containerds, then the resolver, then every node's services; waits until all are healthy and every indexer follows its containerd.</summary>
    public static async Task<LocalCluster> StartAsync(UpstreamRegistry upstream, LocalClusterOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        options ??= new LocalClusterOptions();
        if (options.Indexers && !options.Resolver)
        {
            throw new ArgumentException("indexers need a resolver to publish to", nameof(options));
        }

        var cluster = new LocalCluster(upstream, options, RigDirectory.Create("cluster"));
        try
        {
            await cluster.StartCoreAsync(ct);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Log tails of every service, for failure messages.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"cluster {Directory}, upstream {Upstream.Host} ({(Upstream.IsRunning ? "up" : "down")})");
        if (Resolver is not null)
        {
            text.AppendLine(Resolver.Tail(30));
        }

        foreach (var node in _nodes)
        {
            text.AppendLine(node.Describe());
        }

        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await Task.WhenAll(_nodes.Select(n => n.DisposeAsync().AsTask()));
        if (Resolver is not null)
        {
            await Resolver.DisposeAsync();
        }

        await RigDirectory.RemoveAsync(Directory);
    }

    private async Task StartCoreAsync(CancellationToken ct)
    {
        // Ports are taken as each service binds (a port picked early can be gone by then), so the order follows who
        // must know whose address: the resolver first, then the registries, then the indexers and the hosts files.
        if (Options.Resolver)
        {
            Resolver = SpegelServiceProcess.Start(new SpegelServiceOptions
            {
                Service = "resolver",
                Name = "resolver",
                LogDirectory = Directory,
                Arguments = ResolverArguments(),
                Environment = TransportEnvironment("resolver"),
            });
        }

        var starting = Enumerable.Range(1, Options.Nodes).Select(async i =>
        {
            var name = $"node-{i}";
            var directory = Path.Combine(Directory, name);
            System.IO.Directory.CreateDirectory(directory);
            return new ClusterNode(name, directory, await ContainerdInstance.StartAsync(ct: ct));
        }).ToList();
        try
        {
            await Task.WhenAll(starting);
        }
        finally
        {
            // Keep whatever did start, so that dispose stops it.
            _nodes.AddRange(starting.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result));
        }

        if (Resolver is not null)
        {
            await Resolver.WaitForHealthyAsync(Options.StartTimeout, ct);
        }

        foreach (var node in _nodes)
        {
            node.Registry = SpegelServiceProcess.Start(new SpegelServiceOptions
            {
                Service = "registry",
                Name = "registry",
                LogDirectory = node.Directory,
                Arguments = [.. NodeArguments(node, "{url}"), .. Options.RegistryArguments],
                Environment = TransportEnvironment(node.Name + "-registry"),
            });
        }

        await Task.WhenAll(_nodes.Select(n => n.Registry.WaitForHealthyAsync(Options.StartTimeout, ct)));

        foreach (var node in _nodes)
        {
            HostsDir.Write(node.HostsDirectory, Upstream.Host, $"http://{Upstream.Host}", node.RegistryUrl);
            if (Options.Indexers)
            {
                node.Indexer = SpegelServiceProcess.Start(new SpegelServiceOptions
                {
                    Service = "indexer",
                    Name = "indexer",
                    LogDirectory = node.Directory,
                    Arguments =
                    [
                        .. NodeArguments(node, node.RegistryUrl),
                        $"--Spegel:Indexer:HeartbeatInterval={Options.HeartbeatInterval:c}",
                        .. Options.IndexerArguments,
                    ],
                    Environment = TransportEnvironment(node.Name + "-indexer"),
                });
            }
        }

        var indexers = _nodes.Select(n => n.Indexer).OfType<SpegelServiceProcess>().ToList();
        await Task.WhenAll(indexers.Select(s => s.WaitForHealthyAsync(Options.StartTimeout, ct)));

        // Ready as kubelet's readiness probe would see them: a registry once containerd answers it (this also opens
        // its gRPC channel, as the probes of a running DaemonSet keep it open), an indexer once it follows containerd.
        await Task.WhenAll(_nodes.Select(n => n.Registry).Concat(indexers).Select(s => s.WaitForReadyAsync(Options.StartTimeout, ct)));
        if (Options.WarmUp && Resolver is not null)
        {
            await Task.WhenAll(_nodes.Select(n => WarmUpAsync(n, ct)));
        }
    }

    /// <summary>One miss through the mirror path (resolver lookup, 404), as a node that has been up for a while has long made.</summary>
    private async Task WarmUpAsync(ClusterNode node, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var missing = $"/v2/spegel/warm-up/blobs/sha256:{new string('0', 64)}?ns={Upstream.Host}";
        for (var i = 0; i < 2; i++)
        {
            using var response = await http.GetAsync(new Uri(node.Registry.BaseUri, missing), ct);
            if (response.StatusCode != System.Net.HttpStatusCode.NotFound)
            {
                throw new InvalidOperationException($"{node.Name}'s registry answered {(int)response.StatusCode} to a warm-up miss.\n{node.Describe()}");
            }
        }
    }

    private List<string> ResolverArguments()
    {
        var args = new List<string>
        {
            "--Spegel:Node:Name=resolver",
            $"--Spegel:Transport={Options.Transport}",
            $"--Spegel:Resolver:NodeTimeout={Options.NodeTimeout:c}",
        };
        if (Options.FreshnessBucket is { } bucket)
        {
            args.Add($"--Spegel:Resolver:FreshnessBucket={bucket:c}");
        }

        args.AddRange(Options.ResolverArguments);
        return args;
    }

    /// <summary>What registry and indexer of a node share; <paramref name="address"/> is the node's registry URL (or <c>{url}</c>, for the registry itself).</summary>
    private List<string> NodeArguments(ClusterNode node, string address)
    {
        var args = new List<string>
        {
            $"--Spegel:Transport={Options.Transport}",
            $"--Spegel:Node:Name={node.Name}",
            $"--Spegel:Node:Address={address}",
            $"--Spegel:Containerd:Socket={node.Containerd.Socket}",
            $"--Spegel:Containerd:ContentPath={node.Containerd.ContentPath}",
            $"--Spegel:Containerd:Namespace={node.Containerd.Namespace}",
        };
        if (Resolver is not null)
        {
            args.Add($"--Spegel:Resolver:Url={Resolver.Url}");
        }

        return args;
    }

    // The seam for the Dapr transport: sidecar double endpoints per app go here.
    private Dictionary<string, string> TransportEnvironment(string appId) => Options.Transport switch
    {
        ClusterTransport.Standalone => [],
        _ => throw new NotSupportedException($"transport {Options.Transport} for {appId} is not built yet"),
    };
}
