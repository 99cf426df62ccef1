using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Spegel.Core;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.EndToEnd.Tests.Support;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.EndToEnd.Tests;

/// <summary>
/// Issue 10: a bounded soak. Pulls of a mix of test images on random nodes of a four-node cluster (two at a time, one
/// per node; a node that holds the image removes it first, so pulls go through the mirror and removals are withdrawn)
/// while, at random moments (two fault loops, never two faults on one target at once), a registry is SIGKILLed or SIGTERMed, an indexer, the resolver or a
/// containerd is killed, or the upstream is stopped, and each is brought back after a short outage. CI runs
/// <see cref="CiPulls"/> pulls per transport; <c>SPEGEL_SOAK_PULLS=200</c> runs the full form, <c>SPEGEL_SOAK_SEED</c>
/// replays a run (the seed is printed). Asserted:
/// <list type="bullet">
/// <item>every pull succeeds, or fails for a reason it would have failed for without the mirror: the upstream was
/// down and no healthy peer held the image (or the node's own registry was down), or the node's own containerd was
/// killed; a SIGKILL of the node's own registry mid-request is counted apart (containerd does not fail over a reset
/// response to the next host) and reported;</item>
/// <item>no pull takes longer than <see cref="PullBound"/>;</item>
/// <item>afterwards the resolver lists exactly what each node's containerd holds, for every key of every image;</item>
/// <item>the resident memory of each service slot comes back within 20 % of what it was after the warm-up (within 20 s).</item>
/// </list>
/// </summary>
public sealed class SoakTests(ITestOutputHelper output)
{
    private const int CiPulls = 40;
    private const int Concurrency = 2;

    /// <summary>Faults run side by side (never two on one target): a restart costs seconds on a loaded two-core machine.</summary>
    private const int ChaosLoops = 2;
    private const double RssGrowthAllowed = 1.20;

    private static readonly TimeSpan PullBound = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ResyncInterval = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan RssSettle = TimeSpan.FromSeconds(20);

    private enum FaultKind
    {
        RegistryKill,
        RegistryTerm,
        Indexer,
        Resolver,
        Containerd,
        Upstream,
    }

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task Soak_PullsUnderRandomFaults_FailOnlyAsWithoutMirror_NoHang_MapMatchesNodes_MemoryReturns(ClusterTransport transport)
    {
        var pulls = EnvInt("SPEGEL_SOAK_PULLS") ?? CiPulls;
        var seed = EnvInt("SPEGEL_SOAK_SEED") ?? Random.Shared.Next();
        Assert.True(pulls > 0, "SPEGEL_SOAK_PULLS must be a positive number of pulls");
        output.WriteLine(Invariant($"[{transport}] soak: {pulls} pulls, seed {seed} (SPEGEL_SOAK_SEED={seed} replays the choices)"));

        await using var upstream = await UpstreamRegistry.StartAsync();
        var testImages = new TestImages(upstream);
        var small = testImages.SmallImagesAsync();
        var more = Task.WhenAll(testImages.SingleLayerAsync(), testImages.MultiLayerAsync());

        // Resyncs every 15 s: what refills a Standalone resolver's in-memory map after it was restarted.
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions
        {
            Nodes = 4,
            Transport = transport,
            IndexerArguments = [Invariant($"--Spegel:Indexer:ResyncInterval={ResyncInterval:c}")],
        });
        IReadOnlyList<TestImage> images = [.. await small, .. await more];
        var soak = new Soak(cluster, images, seed);

        // Warm-up: node 1 pulls every image (through its registry: nobody holds them yet, so upstream), and each
        // other node pulls two through the mirror, so every service has done its kind of work once (JIT, pools,
        // connections); then memory is measured as the start.
        foreach (var image in images)
        {
            (await cluster.Node(1).PullAsync(image.Reference)).EnsureSuccess();
            soak.Held(cluster.Node(1), image.Reference);
        }

        await Discovery.WaitAsync(cluster.ResolverApi, "node-1", images.SelectMany(Content.Keys), listed: true, TimeSpan.FromSeconds(10), cluster.Describe);
        for (var n = 2; n <= cluster.Nodes.Count; n++)
        {
            foreach (var image in new[] { images[n % images.Count], images[(n + 3) % images.Count] })
            {
                (await cluster.Node(n).PullAsync(image.Reference)).EnsureSuccess();
                soak.Held(cluster.Node(n), image.Reference);
            }
        }

        await Task.Delay(3000);
        var rssStart = cluster.Services().ToDictionary(s => s.Name, s => s.Process.ResidentBytes() ?? 0);

        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var chaos = Task.WhenAll(Enumerable.Range(0, ChaosLoops).Select(_ => soak.ChaosAsync(clock, stop.Token)));
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(_ => soak.PullLoopAsync(pulls, clock)));
        await stop.CancelAsync();
        await chaos;
        var soakTime = clock.Elapsed;

        // Everything is back.
        Assert.True(upstream.IsRunning, "the upstream was left down");
        Assert.All(cluster.Nodes, n => Assert.True(n.Containerd.IsRunning, $"{n.Name}'s containerd was left down"));
        Assert.All(cluster.Services(), s => Assert.True(s.Process.IsRunning, $"{s.Name} was left down"));

        // Pulls: each explained, none past the bound.
        var results = soak.Results.OrderBy(r => r.Start).ToList();
        var report = new StringBuilder();
        report.AppendLine(Invariant($"[{transport}] {results.Count} pulls in {soakTime.TotalSeconds:0} s under {soak.Faults.Count} faults ({string.Join(", ", soak.Faults.GroupBy(f => f.Kind).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"))})"));
        var durations = results.Select(r => r.Elapsed.TotalMilliseconds).ToList();
        report.AppendLine(Invariant($"  pull time p50 {Stats.Percentile(durations, 50):0} ms, p90 {Stats.Percentile(durations, 90):0} ms, max {durations.Max():0} ms (bound {PullBound.TotalSeconds:0} s)"));
        var unexplained = new List<string>();
        foreach (var group in results.GroupBy(r => r.Succeeded ? "succeeded" : soak.Explain(r) ?? "UNEXPLAINED").OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            report.AppendLine(Invariant($"  {group.Key}: {group.Count()}"));
        }

        foreach (var result in results.Where(r => !r.Succeeded))
        {
            report.AppendLine(Invariant($"    {result.Node} {result.Reference} [{result.Start.TotalSeconds:0.0}–{result.End.TotalSeconds:0.0} s] {soak.Explain(result) ?? "UNEXPLAINED"}: {result.Error}; faults around it: {soak.Around(result)}"));
        }

        foreach (var result in results.Where(r => !r.Succeeded && soak.Explain(r) is null))
        {
            unexplained.Add(Invariant($"{result.Node} {result.Reference} [{result.Start.TotalSeconds:0.0}–{result.End.TotalSeconds:0.0} s]: {result.Error}\n    faults around it: {soak.Around(result)}"));
        }

        output.WriteLine(report.ToString());
        Assert.True(unexplained.Count == 0, $"{unexplained.Count} pulls failed that would have succeeded without the mirror:\n{string.Join('\n', unexplained)}\n{cluster.Describe()}");
        var slow = results.Where(r => r.Elapsed > PullBound).ToList();
        Assert.True(slow.Count == 0, $"pulls past the {PullBound.TotalSeconds} s bound: {string.Join("; ", slow.Select(r => Invariant($"{r.Node} {r.Reference} {r.Elapsed.TotalSeconds:0.0} s {r.Error}")))}");
        // A guard on the run, not on the product (every failure above is already explained): with 40 pulls in a few
        // seconds, one 1-4 s upstream outage next to a resolver fault can take more than half of them (seed 1968411757:
        // 16 of 40 succeeded, all 24 failures explained). A quarter still proves the faults left something to measure.
        Assert.True(results.Count(r => r.Succeeded) >= results.Count / 4, "fewer than a quarter of the pulls succeeded: the faults left nothing to measure");

        // The map: what the resolver lists equals what the nodes' containerds hold, for every key of every image.
        var converge = Stopwatch.StartNew();
        IReadOnlyList<string> mismatches = [];
        try
        {
            await Poll.WaitUntilAsync(
                async ct => (mismatches = await soak.MapMismatchesAsync(ct)).Count == 0,
                ResyncInterval + TimeSpan.FromSeconds(30),
                "the resolver's map to equal what the nodes hold",
                TimeSpan.FromMilliseconds(500));
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{mismatches.Count} keys differ from what the nodes hold:\n{string.Join('\n', mismatches.Take(40))}\n{cluster.Describe()}");
        }

        output.WriteLine(Invariant($"[{transport}] map equal to the nodes' content {converge.Elapsed.TotalMilliseconds:0} ms after the last fault ended ({soak.KeyCount} keys × {cluster.Nodes.Count} nodes)"));

        // Memory: each service slot (a restarted service is its new process) back within 20 % of its start. The
        // services run ASP.NET's server GC, which gives memory back in its own time: sampled every second for up to
        // 20 s, each slot's lowest sample counts.
        var rssEnd = rssStart.Keys.ToDictionary(n => n, _ => long.MaxValue, StringComparer.Ordinal);
        var settle = Stopwatch.StartNew();
        while (true)
        {
            foreach (var (name, process) in cluster.Services())
            {
                rssEnd[name] = Math.Min(rssEnd[name], process.ResidentBytes() ?? long.MaxValue);
            }

            if (rssStart.All(s => rssEnd[s.Key] <= s.Value * RssGrowthAllowed) || settle.Elapsed > RssSettle)
            {
                break;
            }

            await Task.Delay(1000);
        }

        var memory = new StringBuilder(Invariant($"[{transport}] RSS after warm-up → lowest within {settle.Elapsed.TotalSeconds:0} s after the soak (MiB):"));
        var grown = new List<string>();
        foreach (var (name, start) in rssStart)
        {
            var end = rssEnd[name];
            var restarts = soak.Faults.Count(f => f.Target == name);
            memory.Append(Invariant($" {name} {start / 1048576.0:0.0}→{end / 1048576.0:0.0}{(restarts > 0 ? $" ({restarts}× restarted)" : string.Empty)};"));
            if (end > start * RssGrowthAllowed)
            {
                grown.Add(name);
            }
        }

        output.WriteLine(memory.ToString());
        Assert.True(grown.Count == 0, $"resident memory grew by more than 20 %: {string.Join(", ", grown)}");
    }

    private static int? EnvInt(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } text
            ? int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : throw new ArgumentException($"{name}='{text}' is not a whole number")
            : null;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private sealed record PullResult(string Node, string Reference, TestImage Image, TimeSpan Start, TimeSpan End, bool Succeeded, string Error)
    {
        public TimeSpan Elapsed => End - Start;
    }

    /// <summary>A node held an image (by the reference it pulled) from <paramref name="Since"/> until removed (<see cref="Until"/>).</summary>
    private sealed record Hold(string Node, string Reference, TimeSpan Since)
    {
        public TimeSpan? Until { get; set; }
    }

    /// <summary>One fault: what, on which service (<c>node-2-registry</c>, <c>resolver</c>, <c>upstream</c>…), from its start to the moment it was back.</summary>
    private sealed record Fault(FaultKind Kind, string Target, string Node, TimeSpan Start, TimeSpan End);

    /// <summary>The soak's state: who holds what (as the test made it), the pulls' results, the faults' timeline.</summary>
    private sealed class Soak(LocalCluster cluster, IReadOnlyList<TestImage> images, int seed)
    {
        private readonly Random _pick = new(seed);
        private readonly Random _chaos = new(seed + 1);
        private readonly Lock _gate = new();
        private readonly Dictionary<string, SemaphoreSlim> _nodeLocks = cluster.Nodes.ToDictionary(n => n.Name, _ => new SemaphoreSlim(1, 1));

        /// <summary>Who holds what, by the reference pulled, from when to when (test clock; zero for the warm-up; open while held).</summary>
        private readonly List<Hold> _holds = [];
        private readonly HashSet<string> _busy = new(StringComparer.Ordinal);
        private int _issued;

        public ConcurrentBag<PullResult> Results { get; } = [];

        public List<Fault> Faults { get; } = [];

        public int KeyCount => images.SelectMany(Content.Keys).Distinct().Count();

        public void Held(ClusterNode node, string reference)
        {
            lock (_gate)
            {
                _holds.Add(new Hold(node.Name, reference, TimeSpan.Zero));
            }
        }

        public async Task PullLoopAsync(int pulls, Stopwatch clock)
        {
            while (Interlocked.Increment(ref _issued) <= pulls)
            {
                ClusterNode node;
                TestImage image;
                bool byDigest;
                lock (_gate)
                {
                    node = cluster.Nodes[_pick.Next(cluster.Nodes.Count)];
                    image = images[_pick.Next(images.Count)];
                    byDigest = _pick.Next(4) == 0;
                }

                var reference = byDigest ? image.DigestReference : image.Reference;
                var nodeLock = _nodeLocks[node.Name];
                await nodeLock.WaitAsync();
                try
                {
                    Hold? hold;
                    lock (_gate)
                    {
                        hold = _holds.FirstOrDefault(h => h.Node == node.Name && h.Reference == reference && h.Until is null);
                        hold?.Until = clock.Elapsed;
                    }

                    if (hold is not null)
                    {
                        // Removal fails only while containerd is down; the pull then finds the image still there.
                        await node.RemoveImageAsync(reference);
                    }

                    var start = clock.Elapsed;
                    CommandResult? pull = null;
                    string error;
                    try
                    {
                        pull = await node.PullAsync(reference, PullBound * 3);
                        error = pull.Succeeded ? string.Empty : LastLine(pull.StdErr);
                    }
                    catch (TimeoutException ex)
                    {
                        error = "HUNG: " + ex.Message.Split('\n')[0];
                    }

                    var end = clock.Elapsed;
                    var succeeded = pull?.Succeeded == true;
                    Results.Add(new PullResult(node.Name, reference, image, start, end, succeeded, error));
                    if (succeeded)
                    {
                        lock (_gate)
                        {
                            _holds.Add(new Hold(node.Name, reference, end));
                        }
                    }
                }
                finally
                {
                    nodeLock.Release();
                }
            }
        }

        /// <summary>Faults at random moments (0.8–2.5 s after this loop's last one ended), each undone after 0.3–2 s (the upstream 1–4 s), until stopped.</summary>
        public async Task ChaosAsync(Stopwatch clock, CancellationToken stop)
        {
            var kinds = Enum.GetValues<FaultKind>();
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(_chaos.Next(800, 2500), stop);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                FaultKind kind;
                ClusterNode node;
                TimeSpan outage;
                string target;
                lock (_gate)
                {
                    kind = kinds[_chaos.Next(kinds.Length)];
                    node = cluster.Nodes[_chaos.Next(cluster.Nodes.Count)];
                    outage = TimeSpan.FromMilliseconds(kind == FaultKind.Upstream ? _chaos.Next(1000, 4000) : _chaos.Next(300, 2000));
                    target = kind switch
                    {
                        FaultKind.RegistryKill or FaultKind.RegistryTerm => $"{node.Name}-registry",
                        FaultKind.Indexer => $"{node.Name}-indexer",
                        FaultKind.Containerd => $"{node.Name}-containerd",
                        FaultKind.Resolver => "resolver",
                        _ => "upstream",
                    };
                    if (!_busy.Add(target))
                    {
                        continue;
                    }
                }

                var start = clock.Elapsed;

                // Never cancelled half-way: a fault is always undone.
                switch (kind)
                {
                    case FaultKind.RegistryKill:
                        await node.Registry.KillAsync();
                        await Task.Delay(outage, CancellationToken.None);
                        await node.Registry.RestartAsync(ct: CancellationToken.None);
                        break;
                    case FaultKind.RegistryTerm:
                        await node.Registry.StopAsync(TimeSpan.FromSeconds(25));
                        await Task.Delay(outage, CancellationToken.None);
                        await node.Registry.RestartAsync(ct: CancellationToken.None);
                        break;
                    case FaultKind.Indexer:
                        await node.Indexer!.KillAsync();
                        await Task.Delay(outage, CancellationToken.None);
                        await node.Indexer.RestartAsync(ct: CancellationToken.None);
                        break;
                    case FaultKind.Resolver:
                        await cluster.Resolver!.KillAsync();
                        await Task.Delay(outage, CancellationToken.None);
                        await cluster.Resolver.RestartAsync(ct: CancellationToken.None);
                        break;
                    case FaultKind.Containerd:
                        await node.Containerd.KillAsync();
                        await Task.Delay(outage, CancellationToken.None);
                        await node.Containerd.RestartAsync(CancellationToken.None);
                        break;
                    default:
                        await cluster.Upstream.StopAsync();
                        await Task.Delay(outage, CancellationToken.None);
                        await cluster.Upstream.RestartAsync(CancellationToken.None);
                        break;
                }

                lock (_gate)
                {
                    Faults.Add(new Fault(kind, target, kind is FaultKind.Resolver or FaultKind.Upstream ? string.Empty : node.Name, start, clock.Elapsed));
                    _busy.Remove(target);
                }
            }
        }

        /// <summary>Why a failed pull failed as it would have without the mirror, or null when it should have succeeded.</summary>
        public string? Explain(PullResult pull)
        {
            List<Fault> faults;
            List<Hold> held;
            lock (_gate)
            {
                faults = [.. Faults];
                held = [.. _holds.Select(h => h with { })];
            }

            bool During(Fault f, TimeSpan after) => f.Start <= pull.End && f.End + after >= pull.Start;

            if (faults.Any(f => f.Kind == FaultKind.Containerd && f.Node == pull.Node && During(f, TimeSpan.Zero)))
            {
                return "failed: the node's own containerd was killed";
            }

            var upstreamDown = faults.Any(f => f.Kind == FaultKind.Upstream && During(f, TimeSpan.Zero));
            var ownRegistryDown = faults.Any(f => f.Kind is FaultKind.RegistryKill or FaultKind.RegistryTerm && f.Node == pull.Node && During(f, TimeSpan.Zero));
            if (upstreamDown && ownRegistryDown)
            {
                return "failed: upstream down and the node's own registry down";
            }

            if (upstreamDown && !HealthyHolderExists(pull, faults, held))
            {
                return "failed: upstream down and no healthy peer held the image";
            }

            if (faults.Any(f => f.Kind == FaultKind.RegistryKill && f.Node == pull.Node && During(f, TimeSpan.Zero)))
            {
                return "failed: the node's own registry SIGKILLed mid-request (containerd does not fail over a reset)";
            }

            return null;
        }

        /// <summary>The faults overlapping a pull's time (±5 s), for failure messages.</summary>
        public string Around(PullResult pull)
        {
            lock (_gate)
            {
                return string.Join("; ", Faults.Where(f => f.Start <= pull.End + TimeSpan.FromSeconds(5) && f.End >= pull.Start - TimeSpan.FromSeconds(5))
                    .Select(f => Invariant($"{f.Kind} {f.Target} {f.Start.TotalSeconds:0.0}–{f.End.TotalSeconds:0.0} s")));
            }
        }

        /// <summary>Keys (node, key) where the resolver's answer differs from what the node's containerd holds.</summary>
        public async Task<IReadOnlyList<string>> MapMismatchesAsync(CancellationToken ct)
        {
            var expected = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
            foreach (var node in cluster.Nodes)
            {
                var records = (await node.Containerd.ListImagesAsync(ct)).ToHashSet(StringComparer.Ordinal);
                var keys = new HashSet<string>(StringComparer.Ordinal);
                foreach (var image in images)
                {
                    if (records.Contains(image.Reference))
                    {
                        keys.Add(Content.TagKey(image));
                    }

                    if (records.Contains(image.Reference) || records.Contains(image.DigestReference))
                    {
                        keys.UnionWith(image.NativeBlobs.Where(b => File.Exists(node.Containerd.BlobPath(b.Digest))).Select(b => ContentKey.ForDigest(b.Digest)));
                    }
                }

                expected[node.Name] = keys;
            }

            var mismatches = new List<string>();
            foreach (var key in images.SelectMany(Content.Keys).Distinct(StringComparer.Ordinal))
            {
                var listed = (await cluster.ResolverApi.NodesAsync(key, ct)).ToHashSet(StringComparer.Ordinal);
                foreach (var node in cluster.Nodes)
                {
                    var holds = expected[node.Name].Contains(key);
                    if (holds != listed.Contains(node.Name))
                    {
                        mismatches.Add($"{key}: {node.Name} {(holds ? "holds it but is not listed" : "is listed but does not hold it")}");
                    }
                }
            }

            return mismatches;
        }

        /// <summary>
        /// Another node held the image since well before the pull (its advertisement had arrived), and neither it nor
        /// the resolver was faulted during the pull or shortly before it (a node whose indexer or containerd was down
        /// is out of answers until it has heartbeated and resynced; a Standalone resolver restarted empty until the
        /// next resync).
        /// </summary>
        private bool HealthyHolderExists(PullResult pull, List<Fault> faults, List<Hold> held)
        {
            var resolverTaint = cluster.Options.Transport == ClusterTransport.Standalone ? ResyncInterval + TimeSpan.FromSeconds(3) : TimeSpan.FromSeconds(3);
            if (faults.Any(f => f.Kind == FaultKind.Resolver && f.Start <= pull.End && f.End + resolverTaint >= pull.Start))
            {
                return false;
            }

            var holderTaint = cluster.Options.NodeTimeout + TimeSpan.FromSeconds(8);
            return cluster.Nodes.Where(n => n.Name != pull.Node).Any(n =>
                held.Any(h => h.Node == n.Name && (h.Reference == pull.Image.Reference || h.Reference == pull.Image.DigestReference)
                    && h.Since <= pull.Start - TimeSpan.FromSeconds(2) && (h.Until is null || h.Until >= pull.End))
                && !faults.Any(f => f.Node == n.Name && f.Start <= pull.End && f.End + holderTaint >= pull.Start));
        }

        private static string LastLine(string text) =>
            text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? string.Empty;
    }
}
