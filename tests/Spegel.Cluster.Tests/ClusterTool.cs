using System.Text.Json;
using Spegel.TestRig;

namespace Spegel.Cluster.Tests;

/// <summary>The built <c>Spegel.Cluster</c> tool, run as a process the way <c>./spegel</c> runs it.</summary>
internal static class ClusterTool
{
    private static readonly string[] PidFields = ["containerdPid", "registryPid", "indexerPid"];
    private static readonly string[] UrlFields = ["registryUrl", "indexerUrl"];

    public static string DllPath => SpegelServiceProcess.DllPath("Spegel.Cluster");

    public static Task<CommandResult> RunAsync(TimeSpan timeout, params string[] args) =>
        ProcessRunner.RunAsync("dotnet", args.Prepend(DllPath), timeout);

    /// <summary>Runs the tool with <paramref name="directory"/> first on its PATH (a fake <c>daprd</c>, say).</summary>
    public static Task<CommandResult> RunWithPathAsync(string directory, TimeSpan timeout, params string[] args) =>
        ProcessRunner.RunAsync(
            "/usr/bin/env",
            new[] { $"PATH={directory}:{Environment.GetEnvironmentVariable("PATH")}", "dotnet", DllPath }.Concat(args),
            timeout);

    /// <summary>What the tests read from cluster.json: pids, URLs, the nodes' registry logs.</summary>
    public static (List<int> Pids, List<Uri> Urls, JsonElement Root) ReadClusterJson(string workdir)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(workdir, "cluster.json")));
        var root = json.RootElement.Clone();
        var pids = new List<int> { root.GetProperty("supervisorPid").GetInt32(), root.GetProperty("resolverPid").GetInt32() };
        var urls = new List<Uri> { new(root.GetProperty("resolverUrl").GetString()!) };
        foreach (var node in root.GetProperty("nodes").EnumerateArray())
        {
            pids.AddRange(PidFields.Select(p => node.GetProperty(p).GetInt32()));
            urls.AddRange(UrlFields.Select(u => new Uri(node.GetProperty(u).GetString()!)));
        }

        return (pids, urls, root);
    }

    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0] is not ("Z" or "X");
        }
        catch (IOException)
        {
            return false;
        }
    }
}
