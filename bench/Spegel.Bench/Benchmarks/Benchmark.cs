using System.Diagnostics;
using System.Security.Cryptography;
using Spegel.Bench.Infra;
using Spegel.Core;

namespace Spegel.Bench.Benchmarks;

/// <summary>What every benchmark gets: where things are, how big and how long, the shared cluster and the load client.</summary>
public sealed class BenchContext
{
    public required BenchPaths Paths { get; init; }

    public required BenchSettings Settings { get; init; }

    public required Cluster Cluster { get; init; }

    public required LoadClient Client { get; init; }
}

public abstract class Benchmark
{
    protected static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = System.Net.DecompressionMethods.None })
    {
        Timeout = TimeSpan.FromMinutes(2),
    };

    /// <summary>The command-line name.</summary>
    public abstract string Name { get; }

    /// <summary>The letter in docs/benchmarks.md.</summary>
    public abstract string Id { get; }

    public abstract string Title { get; }

    public abstract string Issue { get; }

    public virtual bool NeedsBlobImage => false;

    public virtual bool NeedsPullImage => false;

    /// <summary>False for a benchmark that runs without the containerd/registry cluster (the resolver at scale).</summary>
    public virtual bool NeedsCluster => true;

    public abstract Task RunAsync(BenchContext context, BenchmarkReport report, CancellationToken ct);

    /// <summary>Round indices: negative ones are warm-up rounds (run, not recorded).</summary>
    protected static IEnumerable<int> Rounds(BenchSettings settings) => Enumerable.Range(-settings.WarmupRounds, settings.WarmupRounds + settings.Rounds);

    /// <summary>The sides of a comparison in an order that rotates with the round, so no side always goes first.</summary>
    protected static IEnumerable<T> Rotate<T>(IReadOnlyList<T> items, int round)
    {
        var start = ((round % items.Count) + items.Count) % items.Count;
        return items.Skip(start).Concat(items.Take(start));
    }

    /// <summary>GETs a whole blob and checks its length and digest: every side of a comparison must serve the same bytes.</summary>
    protected static async Task VerifyBlobAsync(string url, Digest digest, long size, CancellationToken ct, IReadOnlyDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        foreach (var (k, v) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(k, v);
        }

        using var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"GET {url} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
        }

        await using var body = await response.Content.ReadAsStreamAsync(ct);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        long total = 0;
        int read;
        while ((read = await body.ReadAsync(buffer, ct)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            total += read;
        }

        var actual = Digest.FromSha256Bytes(hash.GetHashAndReset());
        if (total != size || actual != digest)
        {
            throw new InvalidOperationException($"GET {url} served {total} bytes with digest {actual}; expected {size} bytes of {digest}.");
        }
    }

    /// <summary>A process's CPU seconds (its whole process group) over an action.</summary>
    protected static async Task<(T Result, double CpuSeconds)> WithCpuAsync<T>(int processGroup, Func<Task<T>> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var before = ProcStat.GroupCpuSeconds(processGroup);
        var result = await action();
        return (result, ProcStat.GroupCpuSeconds(processGroup) - before);
    }

    protected static double ElapsedMs(long startTimestamp) => Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds;
}
