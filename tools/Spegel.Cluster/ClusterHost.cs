using Spegel.TestRig;

namespace Spegel.Cluster;

/// <summary>
/// The running cluster, owned by the supervisor process: N nodes (containerd, registry, indexer, hosts directory
/// listing the node's registry first) and one Standalone resolver, all under the workdir. Adapted from the
/// end-to-end tests' <c>LocalCluster</c>. Disposing stops every process, unmounts what is mounted below the
/// workdir and removes the node folders (service logs stay in <c>DIR/logs</c>).
/// </summary>
internal sealed class ClusterHost : IAsyncDisposable
{
    private readonly List<Node> _nodes = [];
    private SpegelServiceProcess? _resolver;

    private ClusterHost(string workdir) => Workdir = workdir;

    public string Workdir { get; }

    public string LogDirectory => Path.Combine(Workdir, "logs");

    public static async Task<ClusterHost> StartAsync(string workdir, int nodes, Action<string> progress, CancellationToken ct)
    {
        var host = new ClusterHost(workdir);
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
        "standalone",
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
            n.Indexer.LogPath))]);

    /// <summary>True while every process of the cluster runs.</summary>
    public bool AllRunning =>
        _resolver is { IsRunning: true } && _nodes.All(n => n.Registry is { IsRunning: true } && n.Indexer is { IsRunning: true });

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_nodes.Select(n => n.StopServicesAsync()));
        if (_resolver is not null)
        {
            await _resolver.StopAsync(TimeSpan.FromSeconds(5));
            await _resolver.DisposeAsync();
        }

        await Task.WhenAll(_nodes.Select(n => n.Containerd.DisposeAsync().AsTask()));
        foreach (var node in _nodes)
        {
            await RigDirectory.RemoveAsync(node.Directory);
        }

        // Anything else still mounted below the workdir (a node that failed half-way).
        await Unmount.BelowAsync(Workdir);
    }

    private async Task StartCoreAsync(int count, Action<string> progress, CancellationToken ct)
    {
        Directory.CreateDirectory(LogDirectory);
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

        progress("starting the resolver, registries and indexers");
        _resolver = SpegelServiceProcess.Start(new SpegelServiceOptions
        {
            Service = "resolver",
            Name = "resolver",
            LogDirectory = LogDirectory,
            Arguments = ["--Spegel:Node:Name=resolver", "--Spegel:Transport=Standalone", "--Spegel:Resolver:NodeTimeout=00:00:05"],
        });

        foreach (var node in _nodes)
        {
            // _default: every registry host goes through the node's mirror first, then to the host itself.
            HostsDir.Write(node.HostsDirectory, HostsDir.DefaultHost, null, node.RegistryUrl);
            string[] common =
            [
                "--Spegel:Transport=Standalone",
                $"--Spegel:Node:Name={node.Name}",
                $"--Spegel:Node:Address={node.RegistryUrl}",
                $"--Spegel:Containerd:Socket={node.Containerd.Socket}",
                $"--Spegel:Containerd:ContentPath={node.Containerd.ContentPath}",
                $"--Spegel:Containerd:Namespace={node.Containerd.Namespace}",
                $"--Spegel:Resolver:Url={_resolver.Url}",
            ];
            node.Registry = SpegelServiceProcess.Start(new SpegelServiceOptions
            {
                Service = "registry",
                Name = node.Name + "-registry",
                Port = node.RegistryPort,
                LogDirectory = LogDirectory,
                Arguments = common,
            });
            node.Indexer = SpegelServiceProcess.Start(new SpegelServiceOptions
            {
                Service = "indexer",
                Name = node.Name + "-indexer",
                LogDirectory = LogDirectory,
                Arguments = [.. common, "--Spegel:Indexer:HeartbeatInterval=00:00:01"],
            });
        }

        progress("waiting until every service is healthy and ready");
        var timeout = TimeSpan.FromSeconds(90);
        var services = _nodes.SelectMany(n => new[] { n.Registry!, n.Indexer! }).ToList();
        await Task.WhenAll(services.Append(_resolver).Select(s => s.WaitForHealthyAsync(timeout, ct)));
        await Task.WhenAll(services.Select(s => s.WaitForReadyAsync(timeout, ct)));
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
