using Spegel.TestRig;

namespace Spegel.EndToEnd.Tests.Cluster;

/// <summary>
/// One node of a <see cref="LocalCluster"/>: its own containerd, its registry on its own loopback port, optionally
/// its indexer, and a hosts directory configured as kubelet's node would be: for the upstream registry host, this
/// node's own registry first, then the upstream as <c>server</c>.
/// </summary>
public sealed class ClusterNode : IAsyncDisposable
{
    internal ClusterNode(string name, string directory, ContainerdInstance containerd)
    {
        Name = name;
        Directory = directory;
        Containerd = containerd;
        HostsDirectory = Path.Combine(directory, "certs.d");
    }

    public string Name { get; }

    /// <summary>This node's folder: hosts directory and service logs.</summary>
    public string Directory { get; }

    public ContainerdInstance Containerd { get; }

    public int RegistryPort => Registry.Port;

    /// <summary>The URL peers (and this node's containerd) use for this node's registry.</summary>
    public string RegistryUrl => Registry.Url;

    public SpegelServiceProcess Registry { get; internal set; } = null!;

    public SpegelServiceProcess? Indexer { get; internal set; }

    /// <summary>containerd's <c>--hosts-dir</c> for this node: <c>&lt;upstream host&gt;/hosts.toml</c> = own registry, then upstream.</summary>
    public string HostsDirectory { get; }

    /// <summary><c>ctr images pull</c> on this node through its hosts directory (own registry first, then upstream).</summary>
    public Task<CommandResult> PullAsync(string reference, TimeSpan? timeout = null, CancellationToken ct = default) =>
        Containerd.PullAsync(reference, HostsDirectory, timeout: timeout, ct: ct);

    /// <summary><c>ctr images pull</c> straight from the upstream (no hosts directory: the reference's host, plain HTTP).</summary>
    public Task<CommandResult> PullFromUpstreamAsync(string reference, CancellationToken ct = default) =>
        Containerd.PullAsync(reference, ct: ct);

    public Task<CommandResult> RemoveImageAsync(string reference, CancellationToken ct = default) =>
        Containerd.RemoveImageAsync(reference, ct);

    /// <summary>Log tails of this node's services, for failure messages.</summary>
    public string Describe() =>
        $"=== {Name}\n{Registry?.Tail(30)}\n{Indexer?.Tail(30)}\n--- containerd log tail:\n{Containerd.ReadLogTail(1500)}";

    public async ValueTask DisposeAsync()
    {
        if (Indexer is not null)
        {
            await Indexer.DisposeAsync();
        }

        if (Registry is not null)
        {
            await Registry.DisposeAsync();
        }

        await Containerd.DisposeAsync();
    }
}
