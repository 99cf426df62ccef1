using System.Globalization;
using System.Net;
using Spegel.TestRig;

namespace Spegel.Bench.Infra;

/// <summary>
/// One of our services run from its build output exactly as <c>./spegel run</c> runs it
/// (<c>dotnet artifacts/bin/&lt;project&gt;/&lt;config&gt;/&lt;project&gt;.dll --urls … --Key=Value …</c>), in its own process group,
/// its JSON log appended to a file. Kept here rather than shared with the tests so the harness stays independent.
/// </summary>
public sealed class SpegelService : IAsyncDisposable
{
    private static readonly HttpClient Probe = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };

    private readonly BackgroundProcess process;

    private SpegelService(string name, BackgroundProcess process, int port)
    {
        Name = name;
        this.process = process;
        Port = port;
    }

    public string Name { get; }

    /// <summary>What a service exits with when its listen address is taken (<c>RunSpegelAsync</c>).</summary>
    private const int CannotListenExitCode = 3;
    private const int MaxPortAttempts = 5;

    public int Port { get; }

    public string Url => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}");

    public int Pid => process.Id;

    public string LogPath => process.LogPath;

    public bool HasExited => process.HasExited;

    /// <summary>
    /// Starts <paramref name="project"/> (Spegel.Registry, Spegel.Indexer, Spegel.Resolver) on a free port, with the
    /// arguments <paramref name="arguments"/> makes from its URL, and waits for <c>/readyz</c> (or <c>/healthz</c>).
    /// </summary>
    public static async Task<SpegelService> StartAsync(
        BenchPaths paths,
        string project,
        string name,
        Func<string, IEnumerable<string>> arguments,
        IReadOnlyDictionary<string, string>? environment = null,
        bool waitReady = true,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var dll = paths.ServiceDll(project);

        // Between picking a free port and the service binding it, another process (a parallel test run, another
        // service of this bench) may take it: the service then exits with 3 ("cannot listen"), and a new port is tried.
        for (var attempt = 1; ; attempt++)
        {
            var port = Ports.GetFreeTcpPort();
            var args = new List<string>();
            foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            {
                args.Add($"{key}={value}");
            }

            args.Add(RequiredTools.Find("dotnet", "dotnet-sdk-10.0"));
            args.Add(dll);
            var url = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}");
            args.Add("--urls");
            args.Add(url);
            args.AddRange(arguments(url));

            // env(1) execs the service in place, so the pid we hold is the service's own.
            var log = Path.Combine(paths.LogDirectory, $"{name}.log");
            var process = BackgroundProcess.Start("/usr/bin/env", args, log);
            var service = new SpegelService(name, process, port);
            try
            {
                await service.WaitForAsync(waitReady ? "/readyz" : "/healthz", TimeSpan.FromSeconds(30), ct);
                return service;
            }
            catch when (process.HasExited && process.ExitCode == CannotListenExitCode && attempt < MaxPortAttempts)
            {
                await service.DisposeAsync();
            }
            catch
            {
                await service.DisposeAsync();
                throw;
            }
        }
    }

    public (long Rss, long Hwm)? Memory => ProcStat.ReadMemory(Pid);

    public MemoryDetail? MemoryDetail => ProcStat.ReadMemoryDetail(Pid);

    public string ReadLogTail(int chars = 3000) => process.ReadLogTail(chars);

    public async Task WaitForAsync(string path, TimeSpan timeout, CancellationToken ct)
    {
        await Poll.WaitUntilAsync(
            async token =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"{Name} exited with {process.ExitCode}. Log tail ({LogPath}):\n{process.ReadLogTail()}");
                }

                try
                {
                    using var response = await Probe.GetAsync(new Uri(Url + path), token);
                    return response.StatusCode == HttpStatusCode.OK;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            },
            timeout,
            $"{Name} to answer {path}",
            TimeSpan.FromMilliseconds(50),
            ct);
    }

    public async ValueTask DisposeAsync()
    {
        await process.StopAsync(TimeSpan.FromSeconds(5));
        await process.DisposeAsync();
    }
}
