using Spegel.TestRig;

namespace Spegel.Cluster;

/// <summary>
/// The running cluster, owned by the supervisor process: N nodes (containerd, registry, indexer, hosts directory
/// listing the node's registry first) and one resolver, all under the workdir. Adapted from the end-to-end tests'
/// <c>LocalCluster</c>. Standalone: the services call each other over HTTP. Dapr: one redis-server, the components
/// rendered from components/ for it, and one real daprd per service process (app-ids <c>resolver</c>,
/// <c>registry</c>, <c>indexer</c>, one instance per node, as LocalCluster and components/ scopes have them).
/// Disposing stops every process (apps, then sidecars, then redis, then containerds), unmounts what is mounted
/// below the workdir and removes the node folders (service logs stay in <c>DIR/logs</c>).
/// </summary>
internal sealed class ClusterHost : IAsyncDisposable
{
    public const string Standalone = "standalone";
    public const string Dapr = "dapr";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly List<Node> _nodes = [];
    private readonly List<DaprSidecar> _sidecars = [];
    private readonly string _transport;
    private SpegelServiceProcess? _resolver;
    private LocalRedis? _redis;
    private string? _daprd;
    private string? _resourcesPath;
    private string? _configPath;
    private string? _peerTokenFile;

    private ClusterHost(string workdir, string transport)
    {
        Workdir = workdir;
        _transport = transport;
    }

    public string Workdir { get; }

    public string LogDirectory => Path.Combine(Workdir, "logs");

    /// <summary>The rendered Dapr resources and configuration (<c>--transport dapr</c>).</summary>
    public string DaprDirectory => Path.Combine(Workdir, "dapr");

    /// <summary>The redis-server's folder (<c>--transport dapr</c>); empty, as nothing is persisted.</summary>
    public string RedisDirectory => Path.Combine(Workdir, "redis");

    private bool IsDapr => _transport == Dapr;

    public static async Task<ClusterHost> StartAsync(string workdir, int nodes, string transport, Action<string> progress, CancellationToken ct)
    {
        if (transport is not (Standalone or Dapr))
        {
            throw new InvalidOperationException($"unknown transport '{transport}' (standalone or dapr)");
        }

        var host = new ClusterHost(workdir, transport);
        try
        {
            await host.StartCoreAsync(nodes, progress, ct);
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    public ClusterInfo Describe(int supervisorPid) => new(
        Workdir,
        _transport,
        supervisorPid,
        _resolver!.Url,
        _resolver.Pid,
        _resolver.LogPath,
        [.. _nodes.Select(n => new NodeInfo(
            n.Name,
            n.Containerd.Socket,
            n.Containerd.Namespace,
            n.Containerd.ContentPath,
            n.Containerd.Snapshotter,
            n.HostsDirectory,
            n.Registry!.Url,
            n.Indexer!.Url,
            n.Containerd.ProcessId ?? 0,
            n.Registry.Pid,
            n.Indexer.Pid,
            n.Registry.LogPath,
            n.Indexer.LogPath))],
        _redis?.Pid ?? 0,
        _redis?.Url,
        _resourcesPath,
        IsDapr ? [.. _sidecars.Select(s => s.Describe())] : null);

    /// <summary>True while every process of the cluster runs.</summary>
    public bool AllRunning =>
        _resolver is { IsRunning: true } && _nodes.All(n => n.Registry is { IsRunning: true } && n.Indexer is { IsRunning: true })
        && _sidecars.All(s => s.IsRunning);

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_nodes.Select(n => n.StopServicesAsync()));
        if (_resolver is not null)
        {
            await _resolver.StopAsync(TimeSpan.FromSeconds(5));
            await _resolver.DisposeAsync();
        }

        // The sidecars outlive their apps (as daprd is stopped after the app container), then their backend goes.
        await Task.WhenAll(_sidecars.Select(s => s.DisposeAsync().AsTask()));
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }

        await Task.WhenAll(_nodes.Select(n => n.Containerd.DisposeAsync().AsTask()));
        foreach (var directory in _nodes.Select(n => n.Directory).Append(RedisDirectory).Append(DaprDirectory))
        {
            await RigDirectory.RemoveAsync(directory);
        }

        // Anything else still mounted below the workdir (a node that failed half-way).
        await Unmount.BelowAsync(Workdir);
    }

    private async Task StartCoreAsync(int count, Action<string> progress, CancellationToken ct)
    {
        Directory.CreateDirectory(LogDirectory);
        if (IsDapr)
        {
            await StartDaprBackendAsync(progress, ct);
        }

        progress($"starting {count} containerds");
        var starting = Enumerable.Range(1, count).Select(async i =>
        {
            var name = $"node-{i}";
            var directory = Path.Combine(Workdir, name);
            Directory.CreateDirectory(directory);
            var containerd = await ContainerdInstance.StartAsync(new ContainerdInstanceOptions { Directory = Path.Combine(directory, "containerd") }, ct);
            return new Node(name, directory, containerd, Ports.GetFreeTcpPort());
        }).ToList();
        try
        {
            await Task.WhenAll(starting);
        }
        finally
        {
            _nodes.AddRange(starting.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result));
        }

        progress("starting the resolver, registries and indexers" + (IsDapr ? ", each with its daprd" : string.Empty));
        var transport = IsDapr ? "Dapr" : "Standalone";
        var resolverSidecar = Sidecar("resolver", "resolver");
        _resolver = SpegelServiceProcess.Start(new SpegelServiceOptions
        {
            Service = "resolver",
            Name = "resolver",
            LogDirectory = LogDirectory,
            Arguments = ["--Spegel:Node:Name=resolver", $"--Spegel:Transport={transport}", "--Spegel:Resolver:NodeTimeout=00:00:05"],
            Environment = resolverSidecar?.Environment ?? new Dictionary<string, string>(StringComparer.Ordinal),
        });

        // In Dapr mode the nodes reach the resolver by app-id through their sidecars, so it must be up first.
        if (resolverSidecar is not null)
        {
            await AttachSidecarAsync(resolverSidecar, _resolver, progress, ct);
        }

        var attaching = new List<Task>();
        foreach (var node in _nodes)
        {
            // _default: every registry host goes through the node's mirror first, then to the host itself.
            HostsDir.Write(node.HostsDirectory, HostsDir.DefaultHost, null, node.RegistryUrl);
            List<string> common =
            [
                $"--Spegel:Transport={transport}",
                $"--Spegel:Node:Name={node.Name}",
                $"--Spegel:Node:Address={node.RegistryUrl}",
                $"--Spegel:Containerd:Socket={node.Containerd.Socket}",
                $"--Spegel:Containerd:ContentPath={node.Containerd.ContentPath}",
                $"--Spegel:Containerd:Namespace={node.Containerd.Namespace}",
            ];

            // In Dapr mode the resolver is reached by app-id only: no URL to fall back on (as LocalCluster does).
            if (!IsDapr)
            {
                common.Add($"--Spegel:Resolver:Url={_resolver.Url}");
            }

            // Every node of this cluster shares one machine's cores: a lookup can take over the product's 1 s budget while
            // the others pull, and with the upstream down (the demo's point) that 404 would fail a pull a peer could
            // serve. A real node has its own cores; here the registries get 5 s.
            List<string> registryArguments = [.. common, "--Spegel:MirrorResolveTimeout=00:00:05"];
            if (_peerTokenFile is not null)
            {
                registryArguments.Add($"--Spegel:PeerTokenFile={_peerTokenFile}");
            }

            var registrySidecar = Sidecar(node.Name + "-registry", "registry");
            node.Registry = SpegelServiceProcess.Start(new SpegelServiceOptions
            {
                Service = "registry",
                Name = node.Name + "-registry",
                Port = node.RegistryPort,
                LogDirectory = LogDirectory,
                Arguments = registryArguments,
                Environment = registrySidecar?.Environment ?? new Dictionary<string, string>(StringComparer.Ordinal),
            });
            var indexerSidecar = Sidecar(node.Name + "-indexer", "indexer");
            node.Indexer = SpegelServiceProcess.Start(new SpegelServiceOptions
            {
                Service = "indexer",
                Name = node.Name + "-indexer",
                LogDirectory = LogDirectory,
                Arguments = [.. common, "--Spegel:Indexer:HeartbeatInterval=00:00:01"],
                Environment = indexerSidecar?.Environment ?? new Dictionary<string, string>(StringComparer.Ordinal),
            });
            if (registrySidecar is not null && indexerSidecar is not null)
            {
                attaching.Add(AttachSidecarAsync(registrySidecar, node.Registry, progress, ct));
                attaching.Add(AttachSidecarAsync(indexerSidecar, node.Indexer, progress, ct));
            }
        }

        progress("waiting until every service is healthy and ready");
        var services = _nodes.SelectMany(n => new[] { n.Registry!, n.Indexer! }).ToList();
        await Task.WhenAll(services.Append(_resolver).Select(s => s.WaitForHealthyAsync(StartTimeout, ct)).Concat(attaching));
        await Task.WhenAll(services.Select(s => s.WaitForReadyAsync(StartTimeout, ct)));
    }

    /// <summary>The redis-server and the components rendered for it, before any sidecar starts.</summary>
    private async Task StartDaprBackendAsync(Action<string> progress, CancellationToken ct)
    {
        _daprd = ClusterCommands.FindOnPath("daprd") ?? throw new InvalidOperationException(ClusterCommands.DaprMissing);
        progress("starting redis-server (no persistence) for the Dapr components");
        _redis = await LocalRedis.StartAsync(RedisDirectory, Path.Combine(LogDirectory, "redis-server.log"), TimeSpan.FromSeconds(30), ct);
        progress($"redis-server pid {_redis.Pid} on {_redis.Host}, dir {_redis.Directory}, log {_redis.LogPath}");
        (_resourcesPath, _configPath) = DaprComponents.Render(Path.Combine(Options.RepoRoot(), "components"), DaprDirectory, _redis.Host);
        progress($"dapr resources rendered from components/ into {_resourcesPath} (redisHost {_redis.Host}); configuration {_configPath}; daprd {_daprd}");

        // A registry on the Dapr transport refuses to start without the peers' shared token (Spegel:PeerTokenFile).
        _peerTokenFile = Path.Combine(DaprDirectory, "peer-token");
        File.WriteAllText(_peerTokenFile, Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(_peerTokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>A sidecar with its ports picked, not yet started (the app is started with its endpoints); null in Standalone.</summary>
    private DaprSidecar? Sidecar(string name, string appId)
    {
        if (!IsDapr)
        {
            return null;
        }

        var sidecar = new DaprSidecar(_daprd!, name, appId, _resourcesPath!, _configPath!, LogDirectory);
        _sidecars.Add(sidecar);
        return sidecar;
    }

    /// <summary>Starts the app's daprd once the app answers (its port is final then) and waits until daprd is ready.</summary>
    private static async Task AttachSidecarAsync(DaprSidecar sidecar, SpegelServiceProcess app, Action<string> progress, CancellationToken ct)
    {
        await app.WaitForHealthyAsync(StartTimeout, ct);
        await sidecar.StartAsync(app.Port, StartTimeout, ct);
        progress($"daprd for {sidecar.Name} pid {sidecar.Pid}: app-id {sidecar.AppId}, app-port {app.Port}, http {sidecar.HttpPort}, grpc {sidecar.GrpcPort}, log {sidecar.LogPath}");
    }

    private sealed class Node(string name, string directory, ContainerdInstance containerd, int registryPort)
    {
        public string Name { get; } = name;

        public string Directory { get; } = directory;

        public ContainerdInstance Containerd { get; } = containerd;

        public int RegistryPort { get; } = registryPort;

        public string RegistryUrl => $"http://127.0.0.1:{RegistryPort}";

        public string HostsDirectory => Path.Combine(Directory, "hosts");

        public SpegelServiceProcess? Registry { get; set; }

        public SpegelServiceProcess? Indexer { get; set; }

        public async Task StopServicesAsync()
        {
            foreach (var service in new[] { Indexer, Registry })
            {
                if (service is not null)
                {
                    await service.StopAsync(TimeSpan.FromSeconds(5));
                    await service.DisposeAsync();
                }
            }
        }
    }
}

/// <summary>Mounts below a folder, from /proc/self/mountinfo (the rig's reader), and lazy unmounts.</summary>
internal static class Unmount
{
    public static IReadOnlyList<string> Below(string path) => RigDirectory.MountsBelow(path);

    public static async Task BelowAsync(string path)
    {
        foreach (var mount in Below(path).OrderByDescending(m => m.Length))
        {
            await ProcessRunner.RunAsync(RequiredTools.Umount, ["-l", mount], TimeSpan.FromSeconds(10));
        }
    }
}
