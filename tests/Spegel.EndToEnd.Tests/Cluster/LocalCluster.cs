using System.Globalization;
using System.Text;
using Spegel.Core.Events;
using Spegel.DaprDouble;
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
    private readonly Dictionary<string, SidecarDouble> _sidecars = new(StringComparer.Ordinal);
    private readonly Lock _sidecarsGate = new();
    private DaprBackplane? _backplane;
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

    /// <summary>The shared backplane of the sidecar doubles (<see cref="ClusterTransport.Dapr"/> only).</summary>
    public DaprBackplane? Backplane => _backplane;

    /// <summary>
    /// The peer token file every registry is given (<see cref="ClusterTransport.Dapr"/> only: a Dapr registry refuses to
    /// start without one, as in Kubernetes where it is the mounted Secret); null in Standalone on loopback.
    /// </summary>
    public string? PeerTokenFile { get; private set; }

    /// <summary>The token in <see cref="PeerTokenFile"/>, for tests that ask a registry as a peer would.</summary>
    public string? PeerToken { get; private set; }

    /// <summary>
    /// The sidecar double next to a service (<see cref="ClusterTransport.Dapr"/> only): <c>resolver</c>,
    /// <c>node-1-registry</c>, <c>node-1-indexer</c>…
    /// </summary>
    public SidecarDouble Sidecar(string name)
    {
        lock (_sidecarsGate)
        {
            return _sidecars.TryGetValue(name, out var sidecar) ? sidecar : throw new InvalidOperationException($"no sidecar for {name} (transport {Options.Transport})");
        }
    }

    /// <summary>The resolver at its own app URL (both transports: the tests look keys up directly, not through a sidecar).</summary>
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

        // The sidecars outlive their apps (as daprd is stopped after the app container), then the backplane goes.
        List<SidecarDouble> sidecars;
        lock (_sidecarsGate)
        {
            sidecars = [.. _sidecars.Values];
        }

        await Task.WhenAll(sidecars.Select(s => s.DisposeAsync().AsTask()));
        if (_backplane is not null)
        {
            await _backplane.DisposeAsync();
        }

        await RigDirectory.RemoveAsync(Directory);
    }

    private async Task StartCoreAsync(CancellationToken ct)
    {
        // Ports are taken as each service binds (a port picked early can be gone by then), so the order follows who
        // must know whose address: the resolver first, then the registries, then the indexers and the hosts files.
        if (Options.Transport == ClusterTransport.Dapr)
        {
            _backplane = new DaprBackplane();
            PeerToken = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
            PeerTokenFile = Path.Combine(Directory, "peer-token");
            await File.WriteAllTextAsync(PeerTokenFile, PeerToken, ct);
        }

        if (Options.Resolver)
        {
            var environment = await TransportEnvironmentAsync("resolver", "resolver", ct);
            Resolver = SpegelServiceProcess.Start(new SpegelServiceOptions
            {
                Service = "resolver",
                Name = "resolver",
                LogDirectory = Directory,
                Arguments = ResolverArguments(),
                Environment = environment,
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
            await AttachAppAsync("resolver", Resolver, ct);
        }

        foreach (var node in _nodes)
        {
            var environment = await TransportEnvironmentAsync(node.Name + "-registry", "registry", ct);
            node.Registry = SpegelServiceProcess.Start(new SpegelServiceOptions
            {
                Service = "registry",
                Name = "registry",
                LogDirectory = node.Directory,
                // Several clusters' worth of processes share two cores while other test projects run beside this one:
                // a resolver answer can take over the product's 1 s default there, and with the upstream stopped that
                // spurious 404 fails a pull the test expects peers to serve. 5 s (a test's own arguments come later
                // and win) keeps the mirror's timeout out of tests that are not about it.
                Arguments = [.. NodeArguments(node, "{url}"), "--Spegel:MirrorResolveTimeout=00:00:05", .. PeerTokenArguments(), .. Options.RegistryArguments],
                Environment = environment,
            });
        }

        await Task.WhenAll(_nodes.Select(async n =>
        {
            await n.Registry.WaitForHealthyAsync(Options.StartTimeout, ct);
            await AttachAppAsync(n.Name + "-registry", n.Registry, ct);
        }));

        foreach (var node in _nodes)
        {
            HostsDir.Write(node.HostsDirectory, Upstream.Host, $"http://{Upstream.Host}", node.RegistryUrl);
            if (Options.Indexers)
            {
                var environment = await TransportEnvironmentAsync(node.Name + "-indexer", "indexer", ct);
                environment = (Options.IndexerEnvironment?.Invoke(node.Name) ?? new Dictionary<string, string>())
                    .Aggregate(new Dictionary<string, string>(environment, StringComparer.Ordinal), (all, extra) => { all[extra.Key] = extra.Value; return all; });
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
                    Environment = environment,
                });
            }
        }

        var indexers = _nodes.Where(n => n.Indexer is not null).Select(n => (n.Name, Indexer: n.Indexer!)).ToList();
        await Task.WhenAll(indexers.Select(async i =>
        {
            await i.Indexer.WaitForHealthyAsync(Options.StartTimeout, ct);
            await AttachAppAsync(i.Name + "-indexer", i.Indexer, ct);
        }));

        // Ready as kubelet's readiness probe would see them: a registry once containerd answers it (this also opens
        // its gRPC channel, as the probes of a running DaemonSet keep it open), an indexer once it follows containerd.
        await Task.WhenAll(_nodes.Select(n => n.Registry).Concat(indexers.Select(i => i.Indexer)).Select(s => s.WaitForReadyAsync(Options.StartTimeout, ct)));
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

    private List<string> PeerTokenArguments() => PeerTokenFile is null ? [] : [$"--Spegel:PeerTokenFile={PeerTokenFile}"];

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
        // In Dapr mode the resolver is reached by app-id through the sidecar only: no URL to fall back on.
        if (Resolver is not null && Options.Transport == ClusterTransport.Standalone)
        {
            args.Add($"--Spegel:Resolver:Url={Resolver.Url}");
        }

        return args;
    }

    /// <summary>
    /// The environment of one service process for the cluster's transport: nothing in Standalone; in Dapr, the
    /// endpoints of a new sidecar double of its own (app-id <paramref name="appId"/>) on the shared backplane, with the
    /// components as components/ declares them (state store with <c>keyPrefix: name</c>, one pub/sub).
    /// </summary>
    private async Task<IReadOnlyDictionary<string, string>> TransportEnvironmentAsync(string name, string appId, CancellationToken ct)
    {
        switch (Options.Transport)
        {
            case ClusterTransport.Standalone:
                return new Dictionary<string, string>(StringComparer.Ordinal);
            case ClusterTransport.Dapr:
                var sidecar = await SidecarDouble.StartAsync(
                    _backplane ?? throw new InvalidOperationException("no backplane"),
                    new SidecarOptions
                    {
                        AppId = appId,
                        StateStores = [new StateStoreComponent(ContentTopics.DefaultStateStore) { KeyPrefix = "name", Type = "state.redis" }],
                        PubSubs = [new PubSubComponent(ContentTopics.DefaultPubSub) { Type = "pubsub.redis" }],
                    },
                    ct);
                lock (_sidecarsGate)
                {
                    _sidecars.Add(name, sidecar);
                }

                return sidecar.Environment;
            default:
                throw new NotSupportedException($"transport {Options.Transport} for {name}");
        }
    }

    /// <summary>Dapr only: tells the service's sidecar where the app listens (its port is known once it is healthy) and waits for its app channel.</summary>
    private async Task AttachAppAsync(string name, SpegelServiceProcess service, CancellationToken ct)
    {
        if (Options.Transport != ClusterTransport.Dapr)
        {
            return;
        }

        await Sidecar(name).AttachAppAsync(service.Url, Options.StartTimeout, ct);
    }
}
