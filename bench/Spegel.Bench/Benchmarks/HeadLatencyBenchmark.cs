using System.Diagnostics;
using System.Globalization;
using System.Net;
using Spegel.Bench.Infra;
using Spegel.Core;

namespace Spegel.Bench.Benchmarks;

/// <summary>
/// D (issue 5): containerd's resolve-then-fetch of a manifest on a cold node — HEAD by tag, then GET of the manifest
/// by the digest the HEAD returned, to its first byte — through node 2's mirror path (every lookup cold), against the
/// same two requests at node 1 directly.
/// </summary>
public sealed class HeadLatencyBenchmark : Benchmark
{
    internal static readonly string[] ManifestAccept =
    [
        MediaTypes.OciIndex, MediaTypes.OciManifest, MediaTypes.DockerManifestList, MediaTypes.DockerManifest, "*/*",
    ];

    public override string Name => "head";

    public override string Id => "D";

    public override string Title => "Manifest by tag on a cold node: latency";

    public override string Issue => "5";

    public override bool NeedsBlobImage => true;

    public override async Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        var s = context.Settings;
        var cluster = context.Cluster;
        var image = cluster.Big!;

        // Node 2 with the lookup cache off: every request asks the resolver, as the first request for a key does.
        await using var cold = await cluster.StartRegistryAsync("registry-n2-nocache", "n2", cluster.Node2, ["--Spegel:MirrorLookupCacheTtl=00:00:00"], ct: ct);
        report.Method =
            $"Per sample, sequentially over one keep-alive connection per side: `HEAD /v2/{image.Repository}/manifests/{image.Tag}?ns={image.Registry}` with containerd's Accept " +
            "header, then `GET` of the manifest by the `Docker-Content-Digest` it returned, timed to the first body byte (containerd's resolve, then fetch). " +
            "**through node 2**: a registry on node 2 (empty containerd) with `--Spegel:MirrorLookupCacheTtl=00:00:00`, so both requests do a resolver lookup " +
            "(tag, then digest) and go to node 1 with `X-Spegel-Mirrored: true` (a tag is accepted only at the newest digest; the manifest is read whole " +
            "and verified before the first byte is sent). **direct**: the same two requests at node 1's registry (containerd image lookup and content read). " +
            $"{s.LatencySamples} samples per side and round, the sides alternating sample by sample; p50 and p99 per round, then the median over rounds.";

        using var handler = new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = DecompressionMethods.None };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
        var sides = new List<(string Name, string Url)> { ("through node 2", cold.Url), ("direct (node 1)", cluster.Registry1.Url) };
        foreach (var round in Rounds(s))
        {
            var head = sides.ToDictionary(x => x.Name, _ => new List<double>());
            var first = sides.ToDictionary(x => x.Name, _ => new List<double>());
            for (var i = 0; i < s.LatencySamples; i++)
            {
                foreach (var side in Rotate(sides, i))
                {
                    var (h, f) = await ResolveAndFetchAsync(http, side.Url, image, ct);
                    head[side.Name].Add(h);
                    first[side.Name].Add(f);
                }
            }

            foreach (var side in sides)
            {
                Log.Info(string.Create(CultureInfo.InvariantCulture, $"  D round {round}: {side.Name,-16} HEAD p50 {Stats.Percentile(head[side.Name], 50):0.00} ms p99 {Stats.Percentile(head[side.Name], 99):0.00} ms; to first manifest byte p50 {Stats.Percentile(first[side.Name], 50):0.00} ms p99 {Stats.Percentile(first[side.Name], 99):0.00} ms"));
                if (round < 0)
                {
                    continue;
                }

                report.Measure($"{side.Name}: HEAD by tag → first manifest byte, p50", "ms").Rounds.Add(Stats.Percentile(first[side.Name], 50));
                report.Measure($"{side.Name}: HEAD by tag → first manifest byte, p99", "ms").Rounds.Add(Stats.Percentile(first[side.Name], 99));
                report.Measure($"{side.Name}: HEAD by tag alone, p50", "ms").Rounds.Add(Stats.Percentile(head[side.Name], 50));
                report.Measure($"{side.Name}: HEAD by tag alone, p99", "ms").Rounds.Add(Stats.Percentile(head[side.Name], 99));
            }
        }

        foreach (var what in new[] { "HEAD by tag → first manifest byte, p50", "HEAD by tag → first manifest byte, p99", "HEAD by tag alone, p50" })
        {
            report.Ratio(
                $"through / direct, {what}",
                report.Measurements.First(m => m.Name == $"{sides[0].Name}: {what}"),
                report.Measurements.First(m => m.Name == $"{sides[1].Name}: {what}"));
        }
    }

    /// <summary>HEAD by tag (ms to headers), then GET by the returned digest; returns both times from the start of the HEAD.</summary>
    internal static async Task<(double HeadMs, double FirstByteMs)> ResolveAndFetchAsync(HttpClient http, string baseUrl, BenchImage image, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        string digest;
        using (var head = new HttpRequestMessage(HttpMethod.Head, Cluster.ManifestUrl(baseUrl, image, image.Tag)))
        {
            head.Headers.TryAddWithoutValidation("Accept", string.Join(", ", ManifestAccept));
            using var response = await http.SendAsync(head, HttpCompletionOption.ResponseHeadersRead, ct);
            if (response.StatusCode != HttpStatusCode.OK || !response.Headers.TryGetValues("Docker-Content-Digest", out var values))
            {
                throw new InvalidOperationException($"HEAD by tag at {baseUrl} answered {(int)response.StatusCode}");
            }

            digest = values.First();
        }

        var headMs = ElapsedMs(start);
        using var get = new HttpRequestMessage(HttpMethod.Get, Cluster.ManifestUrl(baseUrl, image, digest));
        get.Headers.TryAddWithoutValidation("Accept", string.Join(", ", ManifestAccept));
        using var manifest = await http.SendAsync(get, HttpCompletionOption.ResponseHeadersRead, ct);
        if (manifest.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"GET manifest {digest} at {baseUrl} answered {(int)manifest.StatusCode}");
        }

        await using var body = await manifest.Content.ReadAsStreamAsync(ct);
        var one = new byte[1];
        if (await body.ReadAsync(one, ct) != 1)
        {
            throw new InvalidOperationException($"GET manifest {digest} at {baseUrl} had an empty body");
        }

        var firstByteMs = ElapsedMs(start);
        await body.CopyToAsync(Stream.Null, ct);
        return (headMs, firstByteMs);
    }
}
