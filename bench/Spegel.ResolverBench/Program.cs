using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Dapr.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Spegel.Core;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Dapr;
using Spegel.DaprDouble;
using Spegel.Resolver;
using Spegel.Resolver.Events;
using Spegel.Resolver.Lookup;
using Spegel.Resolver.State;

// usage: Spegel.ResolverBench [--quick] [--out results.json] [--only memory-1000 | memory-1000x10 | --scale memory:1000:500] [--no-check]
//                              [--index-chunks N] [--lookups N] [--events N]
// One scale per process gives clean memory numbers (a store's timers keep it reachable after its scale); Spegel.Bench's
// benchmark J runs it that way.
//
// Each scale: N nodes × images of 10 digests each, drawn from a shared catalogue of 2 × images-per-node images (so
// every image is held by about half the nodes, as base layers are). Bulk ingest of the whole map through the resolver
// grows with nodes² (each event rewrites records holding O(nodes) entries): 1,000 × 500 does not finish in minutes.
// So each scale is built in two steps: (1) the map the resolver would hold after every node advertised its images is
// written straight into the store, record by record, in the resolver's own record types and keys (checked against a
// real ingest first, see Check); (2) real events are then timed on top of it (each node advertises images it does
// not hold yet, nodes in parallel): the ingest rate at that size. Then random lookups and the managed memory.
var quick = args.Contains("--quick");
string? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

var outPath = Arg("--out");
int? indexChunks = Arg("--index-chunks") is { } c ? int.Parse(c, CultureInfo.InvariantCulture) : null;
var only = Arg("--only");
var lookups = Arg("--lookups") is { } l ? int.Parse(l, CultureInfo.InvariantCulture) : quick ? 500 : 10_000;
var timedEvents = Arg("--events") is { } e ? int.Parse(e, CultureInfo.InvariantCulture) : quick ? 200 : 2_000;

var scales = quick
    ? new[] { new Scale("memory", 10, 10), new Scale("memory", 30, 10), new Scale("memory", 100, 10), new Scale("dapr", 10, 10), new Scale("dapr", 30, 10), new Scale("dapr", 100, 10) }
    : new[]
    {
        new Scale("memory", 10, 500), new Scale("memory", 100, 500), new Scale("memory", 1000, 500),
        // The shape of the 1,000-node double row below (100,000 entries), in memory: the issue's in-memory vs double pair.
        new Scale("memory", 1000, 10),
        // Through the double every prefilled key is one gRPC save: fewer images per node keep the 1,000-node point in budget.
        new Scale("dapr", 10, 10), new Scale("dapr", 100, 10), new Scale("dapr", 1000, 10),
    };

if (Arg("--scale") is { } custom)
{
    var parts = custom.Split(':');
    if (parts.Length != 3 || parts[0] is not ("memory" or "dapr") || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var n) || !int.TryParse(parts[2], CultureInfo.InvariantCulture, out var i) || n < 1 || i < 1)
    {
        Console.Error.WriteLine($"--scale wants STORE:NODES:IMAGES with STORE memory or dapr and positive counts, not '{custom}'");
        return 2;
    }

    scales = [new Scale(parts[0], n, i)];
}

var results = new List<Result>();
var check = args.Contains("--no-check") ? "prefill check skipped (--no-check)" : await BenchRunner.CheckPrefillAsync(indexChunks);
Console.WriteLine(check);
// --only memory-1000 names the first scale of that store and node count (1,000 × 500); memory-1000x10 names one exactly.
var selected = only is null ? scales
    : scales.Where(s => $"{s.Store}-{s.Nodes}x{s.ImagesPerNode}" == only).ToArray() is { Length: > 0 } exact ? exact
    : scales.Where(s => $"{s.Store}-{s.Nodes}" == only).Take(1).ToArray();
if (selected.Length == 0)
{
    Console.Error.WriteLine($"--only '{only}' names no scale; one of: {string.Join(", ", scales.Select(s => $"{s.Store}-{s.Nodes}x{s.ImagesPerNode}"))}");
    return 2;
}

foreach (var scale in selected)
{
    var result = await BenchRunner.RunAsync(scale, lookups, timedEvents, indexChunks);
    results.Add(result);
    Console.WriteLine(result.ToLine());
}

if (outPath is not null)
{
    await File.WriteAllTextAsync(outPath, JsonSerializer.Serialize(new Output(check, results), new JsonSerializerOptions { WriteIndented = true }));
}

return 0;

internal sealed record Scale(string Store, int Nodes, int ImagesPerNode)
{
    public const int DigestsPerImage = 10;

    // Images are shared across nodes as in a real cluster: every node pulls from a common catalogue.
    public int CatalogueImages => ImagesPerNode * 2;

    public long Entries => (long)Nodes * ImagesPerNode * DigestsPerImage;
}

internal sealed record Output(string PrefillCheck, IReadOnlyList<Result> Results);

internal sealed record Result(
    string Store, int Nodes, int ImagesPerNode, long Entries, double PrefillSeconds, long Events, double IngestSeconds, double EventsPerSecond,
    double LookupP50Ms, double LookupP99Ms, double LookupMaxMs, double ManagedMiB, double BytesPerEntry, double MeanHolders, double MeanDigestRecordBytes,
    double DigestReadP50Ms, double DigestReadP99Ms, double NodeReadsP50Ms, double NodeReadsP99Ms, double LookupGcPauseMs, int LookupGen2Collections, double AllocatedKiBPerLookup)
{
    public string ToLine() => string.Create(CultureInfo.InvariantCulture,
        $"{Store,-6} nodes={Nodes,5} entries={Entries,9} prefill={PrefillSeconds:0.0}s ingest={EventsPerSecond,8:0} ev/s ({Events} in {IngestSeconds:0.0}s) lookup p50={LookupP50Ms:0.000}ms p99={LookupP99Ms:0.000}ms max={LookupMaxMs:0.0}ms managed={ManagedMiB:0.0}MiB ({BytesPerEntry:0} B/entry) holders/digest={MeanHolders:0} record={MeanDigestRecordBytes:0}B | digest read p50={DigestReadP50Ms:0.000} p99={DigestReadP99Ms:0.000}ms, holders' node records p50={NodeReadsP50Ms:0.000} p99={NodeReadsP99Ms:0.000}ms, GC pauses {LookupGcPauseMs:0}ms ({LookupGen2Collections} gen2) over the lookups, {AllocatedKiBPerLookup:0} KiB allocated per lookup");
}

internal static class BenchRunner
{
    public static async Task<Result> RunAsync(Scale scale, int lookups, int timedEvents, int? indexChunks)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        await using var env = await ResolverEnv.StartAsync(scale.Store, indexChunks);
        var catalogue = Catalogue(scale.CatalogueImages);
        var epoch = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        // Heartbeats first (real events), so every node is live and has its node record.
        for (var n = 0; n < scale.Nodes; n++)
        {
            await env.DispatchAsync(new NodeHeartbeat { Node = Node(n), Address = Address(n), Epoch = epoch, Sequence = 1, Timestamp = DateTimeOffset.UtcNow, Interval = TimeSpan.FromSeconds(3) });
        }

        var holdings = Holdings(scale);
        var prefill = Stopwatch.StartNew();
        var (meanHolders, meanRecordBytes) = await PrefillAsync(env, catalogue, holdings, epoch, 1);
        prefill.Stop();

        // Timed real events on top: each picked node advertises an image of the catalogue it does not hold yet.
        var pick = new Random(7);
        var work = new List<(int Node, int Image)>();
        var extra = holdings.Select(h => new HashSet<int>(h)).ToArray();
        for (var i = 0; i < timedEvents; i++)
        {
            var n = pick.Next(scale.Nodes);
            var free = Enumerable.Range(0, scale.CatalogueImages).Where(x => !extra[n].Contains(x)).ToList();
            if (free.Count == 0)
            {
                continue;
            }

            var image = free[pick.Next(free.Count)];
            extra[n].Add(image);
            work.Add((n, image));
        }

        var sequences = new long[scale.Nodes];
        Array.Fill(sequences, 1);
        var perNode = work.GroupBy(w => w.Node).ToList();
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(perNode, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (group, ct) =>
        {
            foreach (var (n, image) in group)
            {
                await env.DispatchAsync(new ContentAdvertised
                {
                    Node = Node(n), Address = Address(n), Epoch = epoch, Sequence = ++sequences[n], Timestamp = DateTimeOffset.UtcNow, Digests = catalogue[image],
                });
            }
        });
        clock.Stop();

        // Lookups: random digests of the catalogue, one at a time, as registries ask.
        var latencies = new double[lookups];
        var gcPauseBefore = GC.GetTotalPauseDuration();
        var gen2Before = GC.CollectionCount(2);
        var allocatedBefore = GC.GetTotalAllocatedBytes();
        var random = new Random(42);
        for (var i = 0; i < lookups; i++)
        {
            var digest = catalogue[random.Next(catalogue.Length)][random.Next(Scale.DigestsPerImage)];
            if (!LookupKey.TryParse(digest, out var key, out var error))
            {
                throw new InvalidOperationException(error);
            }

            var started = Stopwatch.GetTimestamp();
            var answer = await env.Lookup.LookupAsync(key, exclude: null);
            latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (answer.Peers.Count == 0)
            {
                throw new InvalidOperationException($"lookup of {digest} found nobody: the map is not what the scale says");
            }
        }

        var gcPauseMs = (GC.GetTotalPauseDuration() - gcPauseBefore).TotalMilliseconds;
        var gen2 = GC.CollectionCount(2) - gen2Before;
        var allocatedPerLookup = (GC.GetTotalAllocatedBytes() - allocatedBefore) / (double)lookups;
        Array.Sort(latencies);
        var breakdown = await BreakdownAsync(env, catalogue, Math.Min(lookups, 2_000));
        holdings = [];
        extra = [];

        // With the double, the backplane's stored values are part of what is measured (they are what Redis would hold).
        var managed = GC.GetTotalMemory(forceFullCollection: true) - baseline;
        return new Result(
            scale.Store, scale.Nodes, scale.ImagesPerNode, scale.Entries, prefill.Elapsed.TotalSeconds, work.Count, clock.Elapsed.TotalSeconds, work.Count / clock.Elapsed.TotalSeconds,
            Percentile(latencies, 0.50), Percentile(latencies, 0.99), latencies[^1], managed / 1048576.0, (double)managed / scale.Entries, meanHolders, meanRecordBytes,
            breakdown.DigestP50, breakdown.DigestP99, breakdown.NodesP50, breakdown.NodesP99, gcPauseMs, gen2, allocatedPerLookup / 1024);
    }

    /// <summary>
    /// Where a lookup's time goes: reading and deserializing the digest record (O(holders)) and then reading the node
    /// record of every holder for liveness (O(holders) more reads), each timed alone over the same random digests.
    /// </summary>
    private static async Task<(double DigestP50, double DigestP99, double NodesP50, double NodesP99)> BreakdownAsync(ResolverEnv env, string[][] catalogue, int samples)
    {
        var map = env.Map;
        var digestMs = new double[samples];
        var nodesMs = new double[samples];
        var random = new Random(43);
        for (var i = 0; i < samples; i++)
        {
            var digest = catalogue[random.Next(catalogue.Length)][random.Next(Scale.DigestsPerImage)];
            var started = Stopwatch.GetTimestamp();
            var record = await map.ReadDigestAsync(digest);
            digestMs[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var holders = record?.Nodes.Where(n => n.Value.Held).Select(n => n.Key).ToList() ?? [];
            started = Stopwatch.GetTimestamp();
            await map.ReadNodesAsync(holders);
            nodesMs[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }

        Array.Sort(digestMs);
        Array.Sort(nodesMs);
        return (Percentile(digestMs, 0.5), Percentile(digestMs, 0.99), Percentile(nodesMs, 0.5), Percentile(nodesMs, 0.99));
    }

    /// <summary>
    /// Builds the same small map twice — by real ingest and by <see cref="PrefillAsync"/> — and compares every key and
    /// every holder, so the large scales are built the way the resolver itself would have built them.
    /// </summary>
    public static async Task<string> CheckPrefillAsync(int? indexChunks)
    {
        var scale = new Scale("memory", 12, 15);
        var catalogue = Catalogue(scale.CatalogueImages);
        var holdings = Holdings(scale);
        var epoch = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var maps = new List<Dictionary<string, string>>();
        foreach (var real in new[] { true, false })
        {
            await using var env = await ResolverEnv.StartAsync("memory", indexChunks);
            for (var n = 0; n < scale.Nodes; n++)
            {
                await env.DispatchAsync(new NodeHeartbeat { Node = Node(n), Address = Address(n), Epoch = epoch, Sequence = 1, Timestamp = DateTimeOffset.UtcNow, Interval = TimeSpan.FromSeconds(3) });
            }

            if (real)
            {
                for (var n = 0; n < scale.Nodes; n++)
                {
                    var seq = 1L;
                    foreach (var image in holdings[n])
                    {
                        await env.DispatchAsync(new ContentAdvertised { Node = Node(n), Address = Address(n), Epoch = epoch, Sequence = ++seq, Timestamp = DateTimeOffset.UtcNow, Digests = catalogue[image] });
                    }
                }
            }
            else
            {
                await PrefillAsync(env, catalogue, holdings, epoch, 2);
            }

            // What each key says, without the stamps and times (a real ingest stamps each image with its own sequence).
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            var keys = catalogue.SelectMany(d => d).Select(ResolverKeys.Digest)
                .Concat(Enumerable.Range(0, scale.Nodes).SelectMany(n => Enumerable.Range(0, env.IndexChunks).Select(i => ResolverKeys.IndexChunk(Node(n), i))))
                .ToList();
            var values = await env.Store.GetManyAsync(keys);
            foreach (var (key, entry) in values.Where(v => !v.Value.Value.IsEmpty))
            {
                map[key] = key.StartsWith(ResolverKeys.DigestPrefix, StringComparison.Ordinal)
                    ? string.Join(',', JsonSerializer.Deserialize(entry.Value.Span, ResolverStateJsonContext.Default.DigestRecord)!.Nodes.Where(x => x.Value.Held).Select(x => x.Key).Order(StringComparer.Ordinal))
                    : string.Join(',', JsonSerializer.Deserialize(entry.Value.Span, ResolverStateJsonContext.Default.NodeIndexChunk)!.Keys);
            }

            maps.Add(map);
        }

        var differing = maps[0].Keys.Union(maps[1].Keys).Where(k => !maps[0].TryGetValue(k, out var a) || !maps[1].TryGetValue(k, out var b) || a != b).ToList();
        if (differing.Count > 0)
        {
            throw new InvalidOperationException($"the prefilled map differs from a real ingest in {differing.Count} keys, e.g. {differing[0]}: the resolver's record layout changed; update PrefillAsync");
        }

        return $"prefill check: a real ingest of {scale.Nodes} nodes × {scale.ImagesPerNode} images and the prefill wrote the same {maps[0].Count} keys with the same holders";
    }

    /// <summary>
    /// Writes the digest records and node index chunks the resolver holds after every node advertised its images,
    /// each entry stamped (epoch, <paramref name="sequence"/>). Returns the mean holders per digest record and its mean size.
    /// </summary>
    private static async Task<(double MeanHolders, double MeanBytes)> PrefillAsync(ResolverEnv env, string[][] catalogue, List<int>[] holdings, long epoch, long sequence)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var digests = new Dictionary<string, DigestRecord>(StringComparer.Ordinal);
        var chunks = new Dictionary<string, NodeIndexChunk>(StringComparer.Ordinal);
        for (var n = 0; n < holdings.Length; n++)
        {
            var node = Node(n);
            foreach (var digest in holdings[n].SelectMany(i => catalogue[i]))
            {
                var key = ResolverKeys.Digest(digest);
                if (!digests.TryGetValue(key, out var record))
                {
                    digests[key] = record = new DigestRecord();
                }

                record.Nodes[node] = new HolderEntry { Epoch = epoch, Sequence = sequence, Held = true, At = now };
                var chunkKey = ResolverKeys.IndexChunk(node, ResolverKeys.ChunkOf(key, env.IndexChunks));
                if (!chunks.TryGetValue(chunkKey, out var chunk))
                {
                    chunks[chunkKey] = chunk = new NodeIndexChunk();
                }

                chunk.Keys.Add(key);
            }
        }

        long recordBytes = 0;
        var writes = new List<(string Key, byte[] Value)>(digests.Count + chunks.Count);
        foreach (var (key, record) in digests)
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(record, ResolverStateJsonContext.Default.DigestRecord);
            recordBytes += bytes.Length;
            writes.Add((key, bytes));
        }

        writes.AddRange(chunks.Select(c => (c.Key, JsonSerializer.SerializeToUtf8Bytes(c.Value, ResolverStateJsonContext.Default.NodeIndexChunk))));
        var meanHolders = digests.Count == 0 ? 0 : digests.Values.Average(r => r.Nodes.Count);
        var meanBytes = digests.Count == 0 ? 0 : (double)recordBytes / digests.Count;
        digests.Clear();
        chunks.Clear();
        await Parallel.ForEachAsync(writes, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (w, ct) =>
        {
            if (!await env.Store.TrySaveAsync(w.Key, w.Value, SaveCondition.None, cancellationToken: ct))
            {
                throw new InvalidOperationException($"prefill of {w.Key} was refused");
            }
        });
        return (meanHolders, meanBytes);
    }

    /// <summary>Which catalogue images each node holds: a fixed random half of the catalogue per node.</summary>
    private static List<int>[] Holdings(Scale scale) =>
        Enumerable.Range(0, scale.Nodes)
            .Select(n =>
            {
                var random = new Random(n);
                return Enumerable.Range(0, scale.CatalogueImages).OrderBy(_ => random.Next()).Take(scale.ImagesPerNode).ToList();
            })
            .ToArray();

    private static string[][] Catalogue(int images) =>
        Enumerable.Range(0, images)
            .Select(i => Enumerable.Range(0, Scale.DigestsPerImage).Select(d => Digest.ComputeSha256(Encoding.UTF8.GetBytes($"image-{i}-blob-{d}")).ToString()).ToArray())
            .ToArray();

    private static string Node(int n) => $"node-{n:D4}";

    private static string Address(int n) => $"http://10.0.{n / 250}.{n % 250 + 1}:5000";

    private static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(sorted.Length * p) - 1)];
}

/// <summary>The resolver's domain over one store (in memory, or the Dapr state API through the sidecar double).</summary>
internal sealed class ResolverEnv : IAsyncDisposable
{
    private DaprBackplane? backplane;
    private SidecarDouble? sidecar;
    private DaprClient? client;
    private ServiceProvider? provider;

    public IKeyValueStore Store { get; private set; } = null!;

    public ContentEventDispatcher Dispatcher { get; private set; } = null!;

    public PeerLookup Lookup { get; private set; } = null!;

    public PeerMap Map { get; private set; } = null!;

    public int IndexChunks { get; private set; }

    public static async Task<ResolverEnv> StartAsync(string store, int? indexChunks)
    {
        var env = new ResolverEnv();
        if (store == "dapr")
        {
            env.backplane = new DaprBackplane();
            env.sidecar = await SidecarDouble.StartAsync(env.backplane, new SidecarOptions
            {
                AppId = "resolver",
                StateStores = [new StateStoreComponent(ContentTopics.DefaultStateStore) { KeyPrefix = "name" }],
            });
            env.client = new DaprClientBuilder().UseGrpcEndpoint(env.sidecar.GrpcEndpoint).UseHttpEndpoint(env.sidecar.HttpEndpoint).Build();
            env.Store = new DaprKeyValueStore(env.client, ContentTopics.DefaultStateStore);
        }
        else
        {
            env.Store = new InMemoryKeyValueStore(TimeProvider.System);
        }

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(env.Store);
        // Liveness is not what is measured here: nodes stay live however long a scale takes.
        services.AddOptions<ResolverOptions>().Configure(o =>
        {
            o.NodeTimeout = TimeSpan.FromHours(1);
            o.NodeRetention = TimeSpan.FromHours(2);
            if (indexChunks is { } chunks)
            {
                o.IndexChunks = chunks;
            }
        });
        services.AddResolverDomain();
        env.provider = services.BuildServiceProvider();
        env.Dispatcher = env.provider.GetRequiredService<ContentEventDispatcher>();
        env.Lookup = env.provider.GetRequiredService<PeerLookup>();
        env.Map = env.provider.GetRequiredService<PeerMap>();
        env.IndexChunks = env.provider.GetRequiredService<IOptions<ResolverOptions>>().Value.IndexChunks;
        return env;
    }

    public async Task DispatchAsync(ContentEvent contentEvent)
    {
        using var body = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(contentEvent, ContentEventJsonContext.Default.ContentEvent));
        var result = await Dispatcher.DispatchAsync(body, CancellationToken.None);
        if (result.Dropped)
        {
            throw new InvalidOperationException($"event dropped: {result.DropReason}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (provider is not null)
        {
            await provider.DisposeAsync();
        }

        client?.Dispose();
        if (sidecar is not null)
        {
            await sidecar.DisposeAsync();
        }

        if (backplane is not null)
        {
            await backplane.DisposeAsync();
        }
    }
}
