using System.Diagnostics;
using System.Globalization;

namespace Spegel.Bench;

/// <summary>Sizes, rounds and durations: the full run (defaults, ~10 minutes here) or <c>--quick</c> (a smoke run, under a minute).</summary>
public sealed record BenchSettings
{
    public bool Quick { get; init; }

    /// <summary>Measured rounds; each round measures every side of a comparison back to back, in rotating order.</summary>
    public int Rounds { get; init; } = 5;

    /// <summary>Unrecorded rounds first (JIT, page cache, connection pools).</summary>
    public int WarmupRounds { get; init; } = 1;

    public long BlobSize { get; init; } = 256L * 1024 * 1024;

    public int PullLayers { get; init; } = 4;

    public long PullLayerSize { get; init; } = 50L * 1024 * 1024;

    /// <summary>The throttled upstream's total rate (bytes per second), shared by the layers fetched in parallel.</summary>
    public long UpstreamBytesPerSecond { get; init; } = 50_000_000;

    /// <summary>How long one throughput measurement keeps the clients busy.</summary>
    public TimeSpan LoadDuration { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Sequential requests per round in the latency benchmarks.</summary>
    public int LatencySamples { get; init; } = 200;

    /// <summary>Requests per setting in the hedge-delay experiment.</summary>
    public int HedgeSamples { get; init; } = 300;

    public IReadOnlyList<int> HedgeDelaysMs { get; init; } = [5, 20, 50];

    public string ClientPreference { get; init; } = "auto";

    /// <summary>Distinct images node 1 pulls in the discovery benchmark (one latency sample each).</summary>
    public int DiscoveryPulls { get; init; } = 100;

    /// <summary>The image eight nodes pull at once (split into <see cref="PullLayers"/> layers).</summary>
    public long FanoutImageSize { get; init; } = 100L * 1024 * 1024;

    /// <summary>Extra options for the 8 pullers' registries in the fan-out benchmark (<c>--fanout-registry-arg --Spegel:Key=Value</c>, repeatable).</summary>
    public IReadOnlyList<string> FanoutRegistryArgs { get; init; } = [];

    /// <summary>Measured rounds of the fan-out benchmark (each round is 17 pulls of the image; fewer than the others to stay in budget).</summary>
    public int FanoutRounds { get; init; } = 3;

    public static BenchSettings Full { get; } = new();

    public static BenchSettings QuickMode { get; } = new()
    {
        Quick = true,
        Rounds = 1,
        WarmupRounds = 0,
        BlobSize = 8L * 1024 * 1024,
        PullLayerSize = 2L * 1024 * 1024,
        LoadDuration = TimeSpan.FromSeconds(1),
        LatencySamples = 20,
        HedgeSamples = 20,
        HedgeDelaysMs = [20],
        DiscoveryPulls = 5,
        FanoutImageSize = 4L * 1024 * 1024,
        FanoutRounds = 1,
    };

    public Dictionary<string, string> Describe() => new()
    {
        ["mode"] = Quick ? "quick (smoke test: tiny sizes, one round; the numbers mean nothing)" : "full",
        ["rounds"] = $"{WarmupRounds} warm-up + {Rounds} measured",
        ["blob"] = $"{BlobSize / 1024.0 / 1024.0:0.##} MiB (one uncompressed tar layer of random bytes)",
        ["pull image"] = $"{PullLayers} layers × {PullLayerSize / 1024.0 / 1024.0:0.##} MiB",
        ["throttled upstream"] = $"{UpstreamBytesPerSecond / 1e6:0.#} MB/s shared: nginx limit_rate {UpstreamBytesPerSecond / PullLayers} bytes/s per request × {PullLayers} layers in parallel",
        ["throughput run"] = $"{LoadDuration.TotalSeconds:0.#} s per measurement",
        ["latency samples"] = $"{LatencySamples} sequential requests per round and path",
        ["hedge samples"] = $"{HedgeSamples} per setting",
        ["hedge delays"] = string.Join(", ", HedgeDelaysMs.Select(d => d.ToString(CultureInfo.InvariantCulture) + " ms")),
        ["discovery pulls"] = $"{DiscoveryPulls} distinct images pulled one after the other on node 1",
        ["fan-out image"] = $"{FanoutImageSize / 1024.0 / 1024.0:0.##} MiB in {PullLayers} layers, {FanoutRounds} measured rounds after {WarmupRounds} warm-up" +
            (FanoutRegistryArgs.Count > 0 ? "; pullers' registries with " + string.Join(' ', FanoutRegistryArgs) : string.Empty),
    };
}

/// <summary>Progress lines on stderr with the time since the run started.</summary>
public static class Log
{
    private static readonly Stopwatch Clock = Stopwatch.StartNew();

    public static void Info(string message) =>
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{Clock.Elapsed.TotalSeconds,6:0.0}s] {message}"));
}
