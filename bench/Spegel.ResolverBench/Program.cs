using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Dapr.Client;
using Microsoft.Extensions.DependencyInjection;
using Spegel.Core;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Dapr;
using Spegel.DaprDouble;
using Spegel.Resolver;
using Spegel.Resolver.Events;
using Spegel.Resolver.Lookup;

// usage: Spegel.ResolverBench [--quick] [--out results.json]
// Each scale: N nodes × images of 10 digests each, ingested as one ContentAdvertised per image (nodes in
// parallel, each node's events in order, as the indexers would send them), then random digest lookups.
var quick = args.Contains("--quick");
var outIndex = Array.IndexOf(args, "--out");
var outPath = outIndex >= 0 && outIndex + 1 < args.Length ? args[outIndex + 1] : null;
var chunksIndex = Array.IndexOf(args, "--index-chunks");
int? indexChunks = chunksIndex >= 0 && chunksIndex + 1 < args.Length ? int.Parse(args[chunksIndex + 1], CultureInfo.InvariantCulture) : null;
var onlyIndex = Array.IndexOf(args, "--only");
var only = onlyIndex >= 0 && onlyIndex + 1 < args.Length ? args[onlyIndex + 1] : null;

var scales = quick
    ? new[] { new Scale("memory", 10, 10), new Scale("dapr", 10, 10) }
    : new[]
    {
        new Scale("memory", 100, 100), new Scale("memory", 10, 500), new Scale("memory", 100, 500), new Scale("memory", 1000, 500),
        new Scale("dapr", 10, 500), new Scale("dapr", 100, 100),
    };

var results = new List<Result>();
foreach (var scale in scales.Where(s => only is null || $"{s.Store}-{s.Nodes}" == only || $"{s.Store}-{s.Nodes}x{s.ImagesPerNode}" == only))
{
    var result = await BenchRunner.RunAsync(scale, lookups: quick ? 200 : 10_000, indexChunks);
    results.Add(result);
    Console.WriteLine(result.ToLine());
}

if (outPath is not null)
{
    await File.WriteAllTextAsync(outPath, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
}

return 0;

internal sealed record Scale(string Store, int Nodes, int ImagesPerNode)
{
    public const int DigestsPerImage = 10;

    // Images are shared across nodes as in a real cluster: every node pulls from a common catalogue.
    public int CatalogueImages => ImagesPerNode * 2;

    public long Entries => (long)Nodes * ImagesPerNode * DigestsPerImage;
}

internal sealed record Result(
    string Store, int Nodes, int ImagesPerNode, long Entries, long Events, double IngestSeconds, double EventsPerSecond,
    double LookupP50Ms, double LookupP99Ms, double LookupMaxMs, double ManagedMiB, double BytesPerEntry)
{
    public string ToLine() => string.Create(CultureInfo.InvariantCulture,
        $"{Store,-6} nodes={Nodes,5} entries={Entries,9} ingest={EventsPerSecond,8:0} ev/s ({IngestSeconds:0.0}s) lookup p50={LookupP50Ms:0.000}ms p99={LookupP99Ms:0.000}ms max={LookupMaxMs:0.0}ms managed={ManagedMiB:0.0}MiB ({BytesPerEntry:0} B/entry)");
}

internal static class BenchRunner
{
    public static async Task<Result> RunAsync(Scale scale, int lookups, int? indexChunks)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var baseline = GC.GetTotalMemory(forceFullCollection: true);

        await using var backplane = scale.Store == "dapr" ? new DaprBackplane() : null;
        SidecarDouble? sidecar = null;
        DaprClient? client = null;
        IKeyValueStore store;
        if (backplane is not null)
        {
            sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions
            {
                AppId = "resolver",
                StateStores = [new StateStoreComponent(ContentTopics.DefaultStateStore) { KeyPrefix = "name" }],
            });
            client = new DaprClientBuilder().UseGrpcEndpoint(sidecar.GrpcEndpoint).UseHttpEndpoint(sidecar.HttpEndpoint).Build();
            store = new DaprKeyValueStore(client, ContentTopics.DefaultStateStore);
        }
        else
        {
            store = new InMemoryKeyValueStore(TimeProvider.System);
        }

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(store);
        // Liveness is not what is measured here: nodes stay live however long the ingest takes.
        services.AddOptions<ResolverOptions>().Configure(o =>
        {
            o.NodeTimeout = TimeSpan.FromHours(1);
            if (indexChunks is { } chunks)
            {
                o.IndexChunks = chunks;
            }
        });
        services.AddResolverDomain();
        await using var provider = services.BuildServiceProvider();
        var dispatcher = provider.GetRequiredService<ContentEventDispatcher>();
        var lookup = provider.GetRequiredService<PeerLookup>();

        var catalogue = Enumerable.Range(0, scale.CatalogueImages)
            .Select(i => Enumerable.Range(0, Scale.DigestsPerImage).Select(d => Digest.ComputeSha256(Encoding.UTF8.GetBytes($"image-{i}-blob-{d}")).ToString()).ToArray())
            .ToArray();
        var epoch = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        // Heartbeats first, so every node is live when lookups start.
        for (var n = 0; n < scale.Nodes; n++)
        {
            await DispatchAsync(dispatcher, new NodeHeartbeat { Node = Node(n), Address = Address(n), Epoch = epoch, Sequence = 1, Timestamp = DateTimeOffset.UtcNow, Interval = TimeSpan.FromSeconds(3) });
        }

        long events = 0;
        var held = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, scale.Nodes), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (n, ct) =>
        {
            var random = new Random(n);
            var images = Enumerable.Range(0, scale.CatalogueImages).OrderBy(_ => random.Next()).Take(scale.ImagesPerNode);
            var seq = 2L;
            foreach (var image in images)
            {
                held[image] = true;
                await DispatchAsync(dispatcher, new ContentAdvertised
                {
                    Node = Node(n),
                    Address = Address(n),
                    Epoch = epoch,
                    Sequence = seq++,
                    Timestamp = DateTimeOffset.UtcNow,
                    Digests = catalogue[image],
                });
                Interlocked.Increment(ref events);
            }
        });
        clock.Stop();

        // Lookups: random digests of the catalogue, one at a time, as registries ask.
        var latencies = new double[lookups];
        var pick = new Random(42);
        var heldImages = held.Keys.ToArray();
        for (var i = 0; i < lookups; i++)
        {
            var digest = catalogue[heldImages[pick.Next(heldImages.Length)]][pick.Next(Scale.DigestsPerImage)];
            if (!LookupKey.TryParse(digest, out var key, out var error))
            {
                throw new InvalidOperationException(error);
            }

            var started = Stopwatch.GetTimestamp();
            var answer = await lookup.LookupAsync(key, exclude: null);
            latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (answer.Peers.Count == 0)
            {
                throw new InvalidOperationException($"lookup of {digest} found nobody: the ingest did not land");
            }
        }

        Array.Sort(latencies);
        // With the double, the backplane's stored values are part of what is measured (they are what Redis would hold).
        var managed = GC.GetTotalMemory(forceFullCollection: true) - baseline;
        client?.Dispose();
        if (sidecar is not null)
        {
            await sidecar.DisposeAsync();
        }

        return new Result(
            scale.Store, scale.Nodes, scale.ImagesPerNode, scale.Entries, events, clock.Elapsed.TotalSeconds, events / clock.Elapsed.TotalSeconds,
            Percentile(latencies, 0.50), Percentile(latencies, 0.99), latencies[^1], managed / 1048576.0, (double)managed / scale.Entries);
    }

    private static string Node(int n) => $"node-{n:D4}";

    private static string Address(int n) => $"http://10.0.{n / 250}.{n % 250 + 1}:5000";

    private static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(sorted.Length * p) - 1)];

    private static async Task DispatchAsync(ContentEventDispatcher dispatcher, ContentEvent contentEvent)
    {
        using var body = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(contentEvent, ContentEventJsonContext.Default.ContentEvent));
        var result = await dispatcher.DispatchAsync(body, CancellationToken.None);
        if (result.Dropped)
        {
            throw new InvalidOperationException($"event dropped: {result.DropReason}");
        }
    }
}
