using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Spegel.TestRig;

namespace Spegel.Bench.Infra;

/// <summary>One fixed-duration load run: bytes read by all clients, how long, and what the client itself cost.</summary>
public sealed record LoadResult(long Bytes, TimeSpan Duration, long Requests, long Errors, double ClientCpuSeconds, string Raw)
{
    public double MiBPerSecond => Bytes / ProcStat.MiB / Duration.TotalSeconds;
}

/// <summary>
/// Keeps N connections busy GETting one URL for a fixed time, reading and discarding the bodies. wrk (C, epoll, one
/// read into a static buffer per event) when installed, else an in-process SocketsHttpHandler client reading into
/// a pooled buffer. Either way every server in a comparison sees the same client.
/// </summary>
public sealed partial class LoadClient
{
    private const string WrkScript = """
        done = function(summary, latency, requests)
          io.write(string.format("SPEGEL-BENCH bytes=%d duration_us=%d requests=%d errors=%d\n",
            summary.bytes, summary.duration, summary.requests,
            summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
        end
        """;

    private readonly string? wrk;
    private readonly string scriptPath;

    private LoadClient(string? wrk, string scriptPath)
    {
        this.wrk = wrk;
        this.scriptPath = scriptPath;
    }

    public string Description => wrk is not null
        ? "wrk 4.1 (one thread per 4 connections, at most 2; bodies read and discarded)"
        : "in-process .NET HttpClient (SocketsHttpHandler, one task per connection, 256 KiB pooled read buffer)";

    public bool IsWrk => wrk is not null;

    public static LoadClient Create(string preference, string workDirectory)
    {
        string? wrk = null;
        if (preference != "dotnet")
        {
            try
            {
                wrk = RequiredTools.Find("wrk", "wrk");
            }
            catch (MissingToolException) when (preference != "wrk")
            {
                wrk = null;
            }
        }

        var script = Path.Combine(workDirectory, "bench-done.lua");
        File.WriteAllText(script, WrkScript);
        return new LoadClient(wrk, script);
    }

    public Task<LoadResult> RunAsync(string url, int connections, TimeSpan duration, IReadOnlyDictionary<string, string>? headers = null, CancellationToken ct = default) =>
        wrk is not null ? RunWrkAsync(url, connections, duration, headers, ct) : RunDotnetAsync(url, connections, duration, headers, ct);

    private async Task<LoadResult> RunWrkAsync(string url, int connections, TimeSpan duration, IReadOnlyDictionary<string, string>? headers, CancellationToken ct)
    {
        var threads = Math.Clamp((connections + 3) / 4, 1, 2);
        var seconds = Math.Max(1, (int)Math.Round(duration.TotalSeconds));
        var args = new List<string>
        {
            "-c", "TIMEFORMAT='SPEGEL-CPU %3U %3S'; time \"$@\"", "bash",
            wrk!, "-t", threads.ToString(CultureInfo.InvariantCulture), "-c", connections.ToString(CultureInfo.InvariantCulture),
            "-d", seconds.ToString(CultureInfo.InvariantCulture) + "s", "--timeout", "60s", "-s", scriptPath,
        };
        foreach (var (k, v) in headers ?? new Dictionary<string, string>())
        {
            args.Add("-H");
            args.Add($"{k}: {v}");
        }

        args.Add(url);
        var result = await ProcessRunner.RunAsync("/bin/bash", args, TimeSpan.FromSeconds(seconds + 60), ct: ct);
        result.EnsureSuccess();
        var m = BenchLine().Match(result.StdOut);
        var cpu = CpuLine().Match(result.StdErr);
        if (!m.Success)
        {
            throw new InvalidOperationException($"wrk printed no summary: {result}");
        }

        return new LoadResult(
            long.Parse(m.Groups["bytes"].Value, CultureInfo.InvariantCulture),
            TimeSpan.FromMicroseconds(long.Parse(m.Groups["us"].Value, CultureInfo.InvariantCulture)),
            long.Parse(m.Groups["requests"].Value, CultureInfo.InvariantCulture),
            long.Parse(m.Groups["errors"].Value, CultureInfo.InvariantCulture),
            cpu.Success ? double.Parse(cpu.Groups["u"].Value, CultureInfo.InvariantCulture) + double.Parse(cpu.Groups["s"].Value, CultureInfo.InvariantCulture) : double.NaN,
            result.StdOut);
    }

    private static async Task<LoadResult> RunDotnetAsync(string url, int connections, TimeSpan duration, IReadOnlyDictionary<string, string>? headers, CancellationToken ct)
    {
        using var handler = new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = connections, AutomaticDecompression = System.Net.DecompressionMethods.None };
        using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        long bytes = 0, requests = 0, errors = 0;
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        stop.CancelAfter(duration);
        var workers = Enumerable.Range(0, connections).Select(_ => Task.Run(async () =>
        {
            var buffer = ArrayPool<byte>.Shared.Rent(256 * 1024);
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, url);
                    foreach (var (k, v) in headers ?? new Dictionary<string, string>())
                    {
                        request.Headers.TryAddWithoutValidation(k, v);
                    }

                    try
                    {
                        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop.Token);
                        if (!response.IsSuccessStatusCode)
                        {
                            Interlocked.Increment(ref errors);
                        }

                        await using var body = await response.Content.ReadAsStreamAsync(stop.Token);
                        int read;
                        while ((read = await body.ReadAsync(buffer, stop.Token)) > 0)
                        {
                            Interlocked.Add(ref bytes, read);
                        }

                        Interlocked.Increment(ref requests);
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (HttpRequestException)
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var elapsed = clock.Elapsed;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        return new LoadResult(bytes, elapsed, requests, errors, cpu, $"dotnet client: {requests} requests, {bytes} bytes, {errors} errors");
    }

    /// <summary>
    /// Fixed work instead of a fixed time: <paramref name="connections"/> clients each GET the URL whole
    /// <paramref name="requestsPerConnection"/> times; the rate is every byte over the time until the last finished.
    /// For a server that sends nothing until it has a whole large blob (the mirror's verified path), a fixed window
    /// shorter than one transfer would count none of its bytes and a longer one would lose the transfer in flight at
    /// its end, so a time-bounded client measures it unfairly against one that streams.
    /// </summary>
    public static async Task<LoadResult> RunFixedAsync(string url, int connections, int requestsPerConnection, CancellationToken ct = default)
    {
        using var handler = new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = connections, AutomaticDecompression = System.Net.DecompressionMethods.None };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(5) };
        long bytes = 0, requests = 0, errors = 0;
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, connections).Select(_ => Task.Run(async () =>
        {
            var buffer = ArrayPool<byte>.Shared.Rent(256 * 1024);
            try
            {
                for (var i = 0; i < requestsPerConnection; i++)
                {
                    try
                    {
                        using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
                        if (!response.IsSuccessStatusCode)
                        {
                            Interlocked.Increment(ref errors);
                            continue;
                        }

                        await using var body = await response.Content.ReadAsStreamAsync(ct);
                        int read;
                        while ((read = await body.ReadAsync(buffer, ct)) > 0)
                        {
                            Interlocked.Add(ref bytes, read);
                        }

                        Interlocked.Increment(ref requests);
                    }
                    catch (HttpRequestException)
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }, ct)).ToArray();
        await Task.WhenAll(workers);
        var elapsed = clock.Elapsed;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        return new LoadResult(bytes, elapsed, requests, errors, cpu, $"dotnet fixed-work client: {requests} requests, {bytes} bytes, {errors} errors in {elapsed.TotalSeconds:0.00} s");
    }

    [GeneratedRegex(@"SPEGEL-BENCH bytes=(?<bytes>\d+) duration_us=(?<us>\d+) requests=(?<requests>\d+) errors=(?<errors>\d+)")]
    private static partial Regex BenchLine();

    [GeneratedRegex(@"SPEGEL-CPU (?<u>[\d.]+) (?<s>[\d.]+)")]
    private static partial Regex CpuLine();
}
