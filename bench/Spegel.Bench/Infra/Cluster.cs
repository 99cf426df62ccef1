using System.Net.Http.Json;
using Spegel.Core;
using Spegel.Core.Routing;
using Spegel.TestRig;

namespace Spegel.Bench.Infra;

/// <summary>
/// A two-node Standalone cluster on loopback, shared by the benchmarks of one run: an upstream docker-registry with
/// the benchmark images, node 1 (containerd holding them, its registry and indexer), one resolver, and node 2 (an
/// empty containerd and its registry). Benchmarks start extra registry instances for node 2 with other options.
/// </summary>
public sealed class Cluster : IAsyncDisposable
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    private readonly List<IAsyncDisposable> owned = [];

    private Cluster(BenchPaths paths) => Paths = paths;

    public BenchPaths Paths { get; }

    public UpstreamRegistry Upstream { get; private set; } = null!;

    /// <summary>One layer of <see cref="BenchSettings.BlobSize"/>: the blob of the serving and peer benchmarks.</summary>
    public BenchImage? Big { get; private set; }

    /// <summary><see cref="BenchSettings.PullLayers"/> layers: the image of the pull benchmark.</summary>
    public BenchImage? Pull { get; private set; }

    public ContainerdInstance Node1 { get; private set; } = null!;

    public ContainerdInstance Node2 { get; private set; } = null!;

    public SpegelService Resolver { get; private set; } = null!;

    public SpegelService Registry1 { get; private set; } = null!;

    public SpegelService Indexer1 { get; private set; } = null!;

    public SpegelService Registry2 { get; private set; } = null!;

    public static async Task<Cluster> StartAsync(BenchPaths paths, BenchSettings settings, bool needBig, bool needPull, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var cluster = new Cluster(paths);
        try
        {
            await cluster.InitAsync(settings, needBig, needPull, ct);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private async Task InitAsync(BenchSettings settings, bool needBig, bool needPull, CancellationToken ct)
    {
        Log.Info("cluster: starting docker-registry, two containerds and the resolver");
        var upstream = UpstreamRegistry.StartAsync(ct);
        var node1 = ContainerdInstance.StartAsync(ct: ct);
        var node2 = ContainerdInstance.StartAsync(ct: ct);
        Upstream = Own(await upstream);
        Node1 = Own(await node1);
        Node2 = Own(await node2);
        Resolver = Own(await SpegelService.StartAsync(Paths, "Spegel.Resolver", "resolver", _ => [], waitReady: false, ct: ct));

        var building = new List<Task>();
        if (needBig)
        {
            building.Add(Task.Run(async () => Big = await BenchImages.BuildAsync(Upstream, "bench/big", "v1", [settings.BlobSize], ct), ct));
        }

        if (needPull)
        {
            building.Add(Task.Run(async () => Pull = await BenchImages.BuildAsync(Upstream, "bench/pull", "v1", Enumerable.Repeat(settings.PullLayerSize, settings.PullLayers).ToList(), ct), ct));
        }

        Log.Info("cluster: building and pushing the images");
        await Task.WhenAll(building);

        Registry1 = Own(await StartRegistryAsync("registry-n1", "n1", Node1, ct: ct));
        Indexer1 = Own(await SpegelService.StartAsync(
            Paths,
            "Spegel.Indexer",
            "indexer-n1",
            _ =>
            [
                "--Spegel:Node:Name=n1", $"--Spegel:Node:Address={Registry1.Url}", $"--Spegel:Containerd:Socket={Node1.Socket}",
                $"--Spegel:Containerd:Namespace={Node1.Namespace}", $"--Spegel:Resolver:Url={Resolver.Url}",
                // No periodic resync during the run: node 1's freshness in the resolver stays where the pull left it.
                "--Spegel:Indexer:ResyncInterval=01:00:00",
            ],
            waitReady: false,
            ct: ct));
        Registry2 = Own(await StartRegistryAsync("registry-n2", "n2", Node2, ct: ct));

        // Node 1 pulls from the upstream (no mirror); its indexer advertises what landed.
        foreach (var image in new[] { Big, Pull }.OfType<BenchImage>())
        {
            Log.Info($"cluster: node 1 pulls {image.Reference} ({image.TotalSize / ProcStat.MiB:0.#} MiB)");
            (await Node1.PullAsync(image.Reference, unpack: false, timeout: TimeSpan.FromMinutes(5), ct: ct)).EnsureSuccess();
            await WaitAdvertisedAsync(image, ct);
        }
    }

    /// <summary>A registry for <paramref name="node"/>; extra arguments override options (hedge delay, lookup cache…).</summary>
    public Task<SpegelService> StartRegistryAsync(string name, string nodeName, ContainerdInstance node, IEnumerable<string>? extra = null, IReadOnlyDictionary<string, string>? environment = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(node);
        return SpegelService.StartAsync(
            Paths,
            "Spegel.Registry",
            name,
            url =>
            [
                $"--Spegel:Node:Name={nodeName}", $"--Spegel:Node:Address={url}", $"--Spegel:Containerd:Socket={node.Socket}",
                $"--Spegel:Containerd:Namespace={node.Namespace}", $"--Spegel:Containerd:ContentPath={node.ContentPath}",
                $"--Spegel:Resolver:Url={Resolver.Url}", .. extra ?? [],
            ],
            environment,
            ct: ct);
    }

    /// <summary>Waits until the resolver lists node 1 for the image's tag and every blob.</summary>
    public async Task WaitAdvertisedAsync(BenchImage image, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(image);
        var keys = image.Blobs.Select(b => b.Digest.ToString()).Append(image.Reference).ToList();
        await Poll.WaitUntilAsync(
            async token =>
            {
                foreach (var key in keys)
                {
                    var answer = await Http.GetFromJsonAsync(new Uri(Resolver.Url + PeersRoute.For(key, null)), PeersJsonContext.Default.PeersResponse, token);
                    if (answer is null || !answer.Peers.Any(p => p.Node == "n1"))
                    {
                        return false;
                    }
                }

                return true;
            },
            TimeSpan.FromSeconds(30),
            $"the resolver to list n1 for {image.Reference}",
            TimeSpan.FromMilliseconds(50),
            ct);
    }

    /// <summary><c>/v2/&lt;repo&gt;/blobs/&lt;digest&gt;?ns=&lt;upstream&gt;</c> on <paramref name="baseUrl"/>.</summary>
    public static string BlobUrl(string baseUrl, BenchImage image, Digest digest) =>
        $"{baseUrl}/v2/{image.Repository}/blobs/{digest}?ns={image.Registry}";

    public static string ManifestUrl(string baseUrl, BenchImage image, string reference) =>
        $"{baseUrl}/v2/{image.Repository}/manifests/{reference}?ns={image.Registry}";

    private T Own<T>(T item)
        where T : IAsyncDisposable
    {
        owned.Add(item);
        return item;
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = owned.Count - 1; i >= 0; i--)
        {
            try
            {
                await owned[i].DisposeAsync();
            }
            catch (Exception ex)
            {
                Log.Info($"cleanup: {ex.Message}");
            }
        }
    }
}
