using Spegel.TestRig;

namespace Spegel.Observability.Tests.Support;

// The real-process cluster (built services run as `dotnet Spegel.*.dll`, containerd instances of the rig) shared by
// RealProcessMetricsTests and RealClusterPageBrowserTests.

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
