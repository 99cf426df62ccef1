using System.Text.RegularExpressions;
using Spegel.TestRig;

namespace Spegel.Cluster.Tests;

/// <summary><c>cluster up</c>, <c>pull</c>, <c>status</c>, <c>down</c> against real containerds and services.</summary>
public sealed partial class ClusterCommandTests
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task UpPullStatusDown_LeavesNoProcessMountOrPort()
    {
        var workdir = RigDirectory.Create("clt");
        await using var upstream = await UpstreamRegistry.StartAsync();
        var image = await new TestImages(upstream).MultiLayerAsync("cluster-test/app");
        try
        {
            var up = await ClusterTool.RunAsync(CommandTimeout, "cluster", "up", "--nodes", "3", "--workdir", workdir);
            Assert.True(up.Succeeded, up.ToString());
            var (pids, urls, root) = ClusterTool.ReadClusterJson(workdir);
            Assert.Equal(3, root.GetProperty("nodes").GetArrayLength());
            Assert.Equal(11, pids.Count); // supervisor, resolver, and containerd + registry + indexer per node
            Assert.All(pids, pid => Assert.True(ClusterTool.IsAlive(pid), $"pid {pid} from cluster.json is not running"));

            var pull = await ClusterTool.RunAsync(CommandTimeout, "cluster", "pull", "node-1", image.Reference, "--workdir", workdir);
            Assert.True(pull.Succeeded, pull.ToString());
            Assert.Contains("from upstream", pull.StdOut, StringComparison.Ordinal);
            Assert.Contains($"{image.NativeBlobs.Count} blobs", pull.StdOut, StringComparison.Ordinal);

            // The indexer follows containerd's events: the image shows up in status shortly after the pull.
            CommandResult status = null!;
            await Poll.WaitUntilAsync(
                async _ =>
                {
                    status = await ClusterTool.RunAsync(CommandTimeout, "cluster", "status", "--workdir", workdir);
                    return status.Succeeded && Node1HasOneImage().IsMatch(status.StdOut);
                },
                TimeSpan.FromSeconds(30),
                "cluster status to show node-1 alive with 1 image");
            Assert.Contains("node-3", status.StdOut, StringComparison.Ordinal);

            var down = await ClusterTool.RunAsync(CommandTimeout, "cluster", "down", "--workdir", workdir);
            Assert.True(down.Succeeded, down.ToString());
            Assert.Contains("verified", down.StdOut, StringComparison.Ordinal);
            Assert.All(pids, pid => Assert.False(ClusterTool.IsAlive(pid), $"pid {pid} still runs after down"));
            Assert.Empty(RigDirectory.MountsBelow(workdir));
            foreach (var url in urls)
            {
                Assert.False(await Ports.IsListeningAsync(url.Port), $"{url} still accepts connections after down");
            }

            Assert.False(File.Exists(Path.Combine(workdir, "cluster.json")));
        }
        finally
        {
            if (File.Exists(Path.Combine(workdir, "cluster.json")))
            {
                await ClusterTool.RunAsync(CommandTimeout, "cluster", "down", "--workdir", workdir);
            }

            await RigDirectory.RemoveAsync(workdir);
        }
    }

    [Fact]
    public async Task UpWithDaprTransport_WithoutDaprd_SaysSoAndFails()
    {
        var hasDaprd = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(d => File.Exists(Path.Combine(d, "daprd")));
        var workdir = RigDirectory.Create("clt");
        try
        {
            var up = await ClusterTool.RunAsync(CommandTimeout, "cluster", "up", "--transport", "dapr", "--workdir", workdir);
            Assert.NotEqual(0, up.ExitCode);
            if (!hasDaprd)
            {
                Assert.Equal(
                    "--transport dapr needs daprd on PATH; it is not installed here (no package provides it). Use --transport standalone.",
                    up.StdErr.Trim());
            }

            Assert.False(File.Exists(Path.Combine(workdir, "cluster.json")));
        }
        finally
        {
            await RigDirectory.RemoveAsync(workdir);
        }
    }

    [Fact]
    public async Task Status_WithoutCluster_IsAUsageError()
    {
        var workdir = RigDirectory.Create("clt");
        try
        {
            var status = await ClusterTool.RunAsync(CommandTimeout, "cluster", "status", "--workdir", workdir);
            Assert.Equal(2, status.ExitCode);
            Assert.Contains("no cluster in", status.StdErr, StringComparison.Ordinal);
        }
        finally
        {
            await RigDirectory.RemoveAsync(workdir);
        }
    }

    [GeneratedRegex(@"node-1\s*│\s*yes\s*│\s*1\s*│")]
    private static partial Regex Node1HasOneImage();
}
