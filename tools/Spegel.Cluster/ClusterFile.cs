using System.Text.Json;
using System.Text.Json.Serialization;

namespace Spegel.Cluster;

/// <summary>One node as <c>cluster.json</c> describes it: how other tools and people reach it.</summary>
public sealed record NodeInfo(
    string Name,
    string ContainerdSocket,
    string ContainerdNamespace,
    string ContentPath,
    string Snapshotter,
    string HostsDirectory,
    string RegistryUrl,
    string IndexerUrl,
    int ContainerdPid,
    int RegistryPid,
    int IndexerPid,
    string RegistryLog,
    string IndexerLog);

/// <summary>One daprd (<c>--transport dapr</c>): which service it serves and every port it listens on.</summary>
public sealed record SidecarInfo(
    string Name,
    string AppId,
    int AppPort,
    int Pid,
    int DaprHttpPort,
    int DaprGrpcPort,
    int DaprInternalGrpcPort,
    int MetricsPort,
    string Log);

/// <summary>
/// <c>DIR/cluster.json</c>: written by the supervisor once every service is ready, removed by <c>cluster down</c>.
/// The redis-server, the rendered Dapr resources and the sidecars are set with <c>--transport dapr</c> only.
/// </summary>
public sealed record ClusterInfo(
    string Workdir,
    string Transport,
    int SupervisorPid,
    string ResolverUrl,
    int ResolverPid,
    string ResolverLog,
    IReadOnlyList<NodeInfo> Nodes,
    int RedisPid = 0,
    string? RedisUrl = null,
    string? DaprResourcesPath = null,
    IReadOnlyList<SidecarInfo>? Sidecars = null)
{
    public const string FileName = "cluster.json";

    public static string PathIn(string workdir) => System.IO.Path.Combine(workdir, FileName);

    public NodeInfo Node(string name) =>
        Nodes.FirstOrDefault(n => n.Name == name)
        ?? Nodes.FirstOrDefault(n => n.Name == "node-" + name)
        ?? throw new UsageException($"no node '{name}' in this cluster (nodes: {string.Join(", ", Nodes.Select(n => n.Name))})");

    /// <summary>Every pid the cluster started (supervisor included).</summary>
    public IEnumerable<int> Pids => Nodes.SelectMany(n => new[] { n.ContainerdPid, n.RegistryPid, n.IndexerPid })
        .Concat((Sidecars ?? []).Select(s => s.Pid))
        .Append(RedisPid)
        .Append(ResolverPid)
        .Append(SupervisorPid)
        .Where(pid => pid > 0);

    /// <summary>Every loopback URL the cluster listens on (sidecar ports and redis included).</summary>
    public IEnumerable<Uri> Urls => Nodes.SelectMany(n => new[] { n.RegistryUrl, n.IndexerUrl })
        .Append(ResolverUrl)
        .Concat((Sidecars ?? []).SelectMany(s => new[] { s.DaprHttpPort, s.DaprGrpcPort, s.DaprInternalGrpcPort, s.MetricsPort }).Select(p => $"http://127.0.0.1:{p}"))
        .Concat(RedisUrl is null ? [] : [RedisUrl])
        .Select(u => new Uri(u));

    public void Save()
    {
        var path = PathIn(Workdir);
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this, ClusterJsonContext.Default.ClusterInfo));
        File.Move(temp, path, overwrite: true);
    }

    public static ClusterInfo? TryLoad(string workdir)
    {
        var path = PathIn(workdir);
        return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllText(path), ClusterJsonContext.Default.ClusterInfo) : null;
    }

    public static ClusterInfo Load(string workdir) =>
        TryLoad(workdir) ?? throw new UsageException($"no cluster in {workdir} ({PathIn(workdir)} does not exist); start one with ./spegel cluster up");
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
[JsonSerializable(typeof(ClusterInfo))]
internal sealed partial class ClusterJsonContext : JsonSerializerContext;

/// <summary>A mistake in how the tool was called or what it was pointed at: one line, exit code 2.</summary>
public sealed class UsageException : Exception
{
    public UsageException()
    {
    }

    public UsageException(string message)
        : base(message)
    {
    }

    public UsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The cluster did not come up: one line naming the part that failed and where its log is; exit code 1.</summary>
public sealed class ClusterStartException : Exception
{
    public ClusterStartException()
    {
    }

    public ClusterStartException(string message)
        : base(message)
    {
    }

    public ClusterStartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
