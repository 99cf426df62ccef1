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

/// <summary><c>DIR/cluster.json</c>: written by the supervisor once every service is ready, removed by <c>cluster down</c>.</summary>
public sealed record ClusterInfo(
    string Workdir,
    string Transport,
    int SupervisorPid,
    string ResolverUrl,
    int ResolverPid,
    string ResolverLog,
    IReadOnlyList<NodeInfo> Nodes)
{
    public const string FileName = "cluster.json";

    public static string PathIn(string workdir) => System.IO.Path.Combine(workdir, FileName);

    public NodeInfo Node(string name) =>
        Nodes.FirstOrDefault(n => n.Name == name)
        ?? Nodes.FirstOrDefault(n => n.Name == "node-" + name)
        ?? throw new UsageException($"no node '{name}' in this cluster (nodes: {string.Join(", ", Nodes.Select(n => n.Name))})");

    /// <summary>Every pid the cluster started (supervisor included).</summary>
    public IEnumerable<int> Pids => Nodes.SelectMany(n => new[] { n.ContainerdPid, n.RegistryPid, n.IndexerPid }).Append(ResolverPid).Append(SupervisorPid);

    /// <summary>Every loopback URL the cluster listens on.</summary>
    public IEnumerable<Uri> Urls => Nodes.SelectMany(n => new[] { n.RegistryUrl, n.IndexerUrl }).Append(ResolverUrl).Select(u => new Uri(u));

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
