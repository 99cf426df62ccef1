using Spegel.TestRig;

namespace Spegel.Cluster.Tests;

/// <summary>The whole <c>./spegel demo</c> (minus apt and the build), about 20–40 s here.</summary>
public sealed class DemoTests
{
    [Fact]
    [Trait("Category", "Demo")]
    public async Task Demo_ServesNodes2And3FromPeersWithTheUpstreamDown_AndCleansUp()
    {
        var workdir = RigDirectory.Create("demo");
        try
        {
            var demo = await ClusterTool.RunAsync(TimeSpan.FromMinutes(3), "demo", "--workdir", workdir);
            Assert.True(demo.Succeeded, demo.ToString());
            Assert.Contains("demo passed", demo.StdOut, StringComparison.Ordinal);
            Assert.Matches(@"node-2\s*│[^\n]*│\s*peer node-", demo.StdOut);
            Assert.Matches(@"node-3\s*│[^\n]*│\s*peers? node-", demo.StdOut);
            Assert.Matches(@"node-1\s*│[^\n]*│\s*upstream", demo.StdOut);
            Assert.Contains("cleaned up: verified", demo.StdOut, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(workdir, "cluster.json")));
            Assert.Empty(RigDirectory.MountsBelow(workdir));
        }
        finally
        {
            if (File.Exists(Path.Combine(workdir, "cluster.json")))
            {
                await ClusterTool.RunAsync(TimeSpan.FromMinutes(1), "cluster", "down", "--workdir", workdir);
            }

            await RigDirectory.RemoveAsync(workdir);
        }
    }
}
