using System.Diagnostics;
using Spegel.Core.Events;
using Spegel.DaprDouble;
using Spegel.Resolver.Events;
using Xunit.Abstractions;
using static Spegel.Resolver.Tests.TestEvents;

namespace Spegel.Resolver.Tests;

public sealed class ContentionTests(ITestOutputHelper output)
{
    /// <summary>
    /// A DaemonSet rollout: 200 nodes pull the same image at once and advertise its 50 blobs, through several
    /// resolver replicas (competing consumers, each with its own sidecar) writing one shared store.
    /// Events that come back Contended are redelivered, as Dapr would on RETRY.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Advertise_200NodesSame50DigestsConcurrently_EveryDigestListsAllNodes(int replicas)
    {
        const int nodeCount = 200;
        const int digestCount = 50;
        const string tag = "docker.io/library/nginx:1.27";
        var digests = Enumerable.Range(0, digestCount).Select(i => Digest($"layer-{i}")).ToList();
        var nodes = Enumerable.Range(0, nodeCount).Select(i => $"node-{i:D3}").ToList();
        var clock = new ManualClock();

        await using var dapr = await DaprSidecarFixture.StartAsync();
        var sidecars = new List<SidecarDouble> { dapr.Sidecar };
        for (var i = 1; i < replicas; i++)
        {
            sidecars.Add(await DaprSidecarFixture.StartSidecarAsync(dapr.Backplane, "resolver"));
        }

        var stores = sidecars.Select(s => new CountingKeyValueStore(dapr.CreateStore(s))).ToList();
        // Every holder answered (not the default MaxPeers), so the answer shows that no node was lost.
        var resolvers = stores.Select(s => new ResolverHarness(s, clock, o => o.MaxPeers = nodeCount)).ToList();
        try
        {
            var redeliveries = 0;
            var clockTime = Stopwatch.StartNew();
            await Task.WhenAll(nodes.Select(async (node, i) =>
            {
                var resolver = resolvers[i % replicas];
                var advertised = Advertised(node, 1, digests, [new TagBinding(tag, digests[0])]);
                while (await resolver.ApplyAsync(advertised) == EventOutcome.Contended)
                {
                    Interlocked.Increment(ref redeliveries);
                }
            }));
            clockTime.Stop();
            output.WriteLine($"{nodeCount} nodes x {digestCount} digests through {replicas} resolver replica(s) over the Dapr adapter: " +
                $"{clockTime.Elapsed.TotalMilliseconds:0} ms, {redeliveries} redeliveries, {stores.Sum(s => s.Reads)} reads, " +
                $"{stores.Sum(s => s.Writes)} writes of which {stores.Sum(s => s.LostRaces)} lost a compare-and-swap race");

            // The test is about contention: with several replicas writing the same keys, some compare-and-swap
            // writes must have lost (else nothing here was concurrent and "no lost update" proved nothing).
            var lostRaces = stores.Sum(s => s.LostRaces);
            if (replicas > 1)
            {
                Assert.True(lostRaces > 0, $"{replicas} replicas wrote the same {digestCount} digests without one lost compare-and-swap race");
            }

            var expected = nodes.Order(StringComparer.Ordinal).ToList();
            foreach (var digest in digests)
            {
                var record = await resolvers[0].Map.ReadDigestAsync(digest);
                Assert.Equal(expected, record!.Nodes.Where(n => n.Value.Held).Select(n => n.Key).Order(StringComparer.Ordinal));
                Assert.Equal(expected, (await resolvers[^1].PeersAsync(digest)).Order(StringComparer.Ordinal));
            }

            Assert.Equal(expected, (await resolvers[0].PeersAsync(tag)).Order(StringComparer.Ordinal));
            Assert.All(nodes, node => Assert.Contains(
                Stamp(node), dapr.Backplane.GetStoredKeys(DaprSidecarFixture.StateStore.Name)));
        }
        finally
        {
            foreach (var resolver in resolvers)
            {
                resolver.Dispose();
            }
        }

        // keyPrefix "name": every replica (and any other app) sees one key space, "spegel-state||node|…".
        static string Stamp(string node) => $"{DaprSidecarFixture.StateStore.Name}||node|{node}";
    }
}
