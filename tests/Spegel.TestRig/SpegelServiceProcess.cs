using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;

namespace Spegel.TestRig;

/// <summary>What to run: a service, its arguments and environment, where it listens.</summary>
public sealed class SpegelServiceOptions
{
    /// <summary><c>registry</c>, <c>indexer</c>, <c>resolver</c>, or a project name such as <c>Spegel.Registry</c>.</summary>
    public required string Service { get; init; }

    /// <summary>
    /// Arguments after <c>--urls</c>, e.g. <c>--Spegel:Node:Name=node-1</c>. <c>{url}</c> and <c>{port}</c> are replaced
    /// with the address the service listens on (<c>--Spegel:Node:Address={url}</c>), also after a new port was picked.
    /// </summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];

    /// <summary>Environment variables set for the process (later: <c>DAPR_GRPC_ENDPOINT</c>, <c>DAPR_HTTP_ENDPOINT</c>…).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The loopback port to listen on; null picks a free one, and picks another when the service finds it taken by
    /// the time it binds (exit code 3) while starting: between picking and binding, any process may get it.
    /// </summary>
    public int? Port { get; init; }

    /// <summary>Where the log file goes; null creates a rig directory for it.</summary>
    public string? LogDirectory { get; init; }

    /// <summary>A name for the log file and failure messages (<c>node-1-registry</c>); defaults to the service.</summary>
    public string? Name { get; init; }

    /// <summary>A native executable of the service (the registry's Native AOT build) to run instead of <c>dotnet &lt;dll&gt;</c>.</summary>
    public string? Executable { get; init; }
}

/// <summary>
/// One Spegel service run as a real process from its build output (<c>artifacts/bin/&lt;Project&gt;/&lt;config&gt;/</c>),
/// the way <c>./spegel run</c> runs it: <c>--urls http://127.0.0.1:PORT</c>, extra arguments and environment
/// variables, output captured line by line in memory and appended to a log file. Stop, kill and restart keep the
/// port, arguments and environment. Processes still alive when the test process exits are killed then.
/// </summary>
public sealed partial class SpegelServiceProcess : IAsyncDisposable
{
    private const int SigKill = 9;
    private const int SigTerm = 15;

    /// <summary>What <c>RunSpegelAsync</c> exits with when the listen address is taken.</summary>
    private const int CannotListenExitCode = 3;
    private const int MaxPortAttempts = 5;

    private static readonly ConcurrentDictionary<SpegelServiceProcess, byte> Live = new();
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.FromSeconds(5) })
    {
        Timeout = TimeSpan.FromSeconds(2),
    };

    private readonly SpegelServiceOptions _options;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly Lock _logGate = new();
    private readonly bool _ownsLogDirectory;
    private Process? _process;
    private StreamWriter? _log;
    private bool _disposed;
    private bool _started;
    private int _portAttempts = 1;
    private int _linesAtLaunch;

    static SpegelServiceProcess()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var service in Live.Keys)
            {
                service.TrySignal(SigKill);
            }
        };
    }

    private SpegelServiceProcess(SpegelServiceOptions options, int port, string logDirectory, bool ownsLogDirectory)
    {
        _options = options;
        _ownsLogDirectory = ownsLogDirectory;
        Project = ProjectName(options.Service);
        Name = options.Name ?? options.Service;
        Port = port;
        LogPath = Path.Combine(logDirectory, Name + ".log");
    }

    public string Project { get; }

    public string Name { get; }

    public int Port { get; private set; }

    /// <summary><c>http://127.0.0.1:PORT</c>, no trailing slash.</summary>
    public string Url => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}");

    public Uri BaseUri => new(Url);

    public string LogPath { get; }

    public int Pid => _process?.Id ?? throw new InvalidOperationException($"{Name} was never started");

    public bool HasExited => _process is null || _process.HasExited;

    public bool IsRunning => !HasExited;

    public int ExitCode => _process?.ExitCode ?? throw new InvalidOperationException($"{Name} was never started");

    /// <summary>
    /// Variables set (over the options' environment) from the next start on: a restart under libfaketime sets
    /// <c>LD_PRELOAD</c> and <c>FAKETIME</c> here, and clears them again with empty values.
    /// </summary>
    public IDictionary<string, string> EnvironmentOverrides { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Every output line of every run so far, in order.</summary>
    public IReadOnlyList<string> Lines => _lines.ToArray();

    /// <summary>Starts the service (not waiting for it to be healthy: see <see cref="WaitForHealthyAsync"/>).</summary>
    public static SpegelServiceProcess Start(SpegelServiceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var ownsLogDirectory = options.LogDirectory is null;
        var logDirectory = options.LogDirectory ?? RigDirectory.Create("svc");
        Directory.CreateDirectory(logDirectory);
        var service = new SpegelServiceProcess(options, options.Port ?? Ports.GetFreeTcpPort(), logDirectory, ownsLogDirectory);
        service.Launch();
        return service;
    }

    /// <summary>Starts <paramref name="service"/> with <paramref name="arguments"/> on a free port.</summary>
    public static SpegelServiceProcess Start(string service, params string[] arguments) =>
        Start(new SpegelServiceOptions { Service = service, Arguments = arguments });

    /// <summary>Starts the service and waits until <c>/healthz</c> answers 200.</summary>
    public static async Task<SpegelServiceProcess> StartHealthyAsync(SpegelServiceOptions options, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        var service = Start(options);
        try
        {
            await service.WaitForHealthyAsync(timeout ?? TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
            return service;
        }
        catch
        {
            await service.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary><c>Spegel.Registry</c> for <c>registry</c>, and so on; a project name is returned as it is.</summary>
    public static string ProjectName(string service)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        return service.ToLowerInvariant() switch
        {
            "registry" => "Spegel.Registry",
            "indexer" => "Spegel.Indexer",
            "resolver" => "Spegel.Resolver",
            _ => service,
        };
    }

    /// <summary>
    /// The service's built dll in the configuration the calling test assembly was built in (its output folder's
    /// name, <c>debug</c> or <c>release</c>): the test project references the services, so they were built with it.
    /// </summary>
    public static string DllPath(string service)
    {
        var project = ProjectName(service);
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Name;
        var path = Path.Combine(RepositoryRoot(), "artifacts", "bin", project, configuration, project + ".dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"{project} is not built in '{configuration}'; build the solution first", path);
    }

    /// <summary>The checkout the running tests were built from: the folder above their output that holds <c>Spegel.Dapr.sln</c>.</summary>
    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Spegel.Dapr.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Spegel.Dapr.sln not found above the test output folder.");
    }

    /// <summary>Waits until <c>/healthz</c> answers 200; throws with the log tail when the process exits or time runs out.</summary>
    public Task WaitForHealthyAsync(TimeSpan timeout, CancellationToken ct = default) => WaitForStatusAsync("/healthz", timeout, ct);

    /// <summary>Waits until <c>/readyz</c> answers 200 (the service's dependencies answer).</summary>
    public Task WaitForReadyAsync(TimeSpan timeout, CancellationToken ct = default) => WaitForStatusAsync("/readyz", timeout, ct);

    /// <summary>The status code of a GET of <paramref name="path"/>, or null when nothing answered.</summary>
    public async Task<HttpStatusCode?> ProbeAsync(string path, CancellationToken ct = default)
    {
        try
        {
            using var response = await Http.GetAsync(new Uri(BaseUri, path), ct).ConfigureAwait(false);
            return response.StatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>Sends a signal to the process (SIGTERM = 15 for a graceful stop).</summary>
    public void Signal(int signal)
    {
        if (!TrySignal(signal))
        {
            throw new InvalidOperationException($"kill({Pid}, {signal}) failed: {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Waits for the process to exit and returns its exit code; throws <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        var process = _process ?? throw new InvalidOperationException($"{Name} was never started");
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout.TotalSeconds:0.#} s.\n{Tail()}");
        }

        // The parameterless wait drains the asynchronous output readers.
        process.WaitForExit();
        return process.ExitCode;
    }

    /// <summary>SIGTERM, then SIGKILL when it has not exited within <paramref name="grace"/> (default 10 s).</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (HasExited)
        {
            return;
        }

        TrySignal(SigTerm);
        try
        {
            await WaitForExitAsync(grace ?? TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await KillAsync().ConfigureAwait(false);
        }
    }

    /// <summary>SIGKILL, like a crash or an OOM kill, and wait until it is gone.</summary>
    public async Task KillAsync()
    {
        if (_process is null || _process.HasExited)
        {
            return;
        }

        TrySignal(SigKill);
        await _process.WaitForExitAsync().ConfigureAwait(false);
        _process.WaitForExit();
    }

    /// <summary>Stops the process if it runs, starts it again with the same port, arguments and environment, and waits for <c>/healthz</c>.</summary>
    public async Task RestartAsync(TimeSpan? healthyTimeout = null, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await StopAsync().ConfigureAwait(false);
        Launch();
        await WaitForHealthyAsync(healthyTimeout ?? TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
    }

    /// <summary>The last <paramref name="maxLines"/> output lines, for failure messages.</summary>
    public string Tail(int maxLines = 40)
    {
        var lines = Lines;
        return $"--- {Name} ({LogPath}), last {Math.Min(maxLines, lines.Count)} of {lines.Count} lines:\n" + string.Join('\n', lines.Skip(Math.Max(0, lines.Count - maxLines)));
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await KillAsync().ConfigureAwait(false);
        Live.TryRemove(this, out _);
        _process?.Dispose();
        lock (_logGate)
        {
            _log?.Dispose();
            _log = null;
        }

        if (_ownsLogDirectory)
        {
            await RigDirectory.RemoveAsync(Path.GetDirectoryName(LogPath)!).ConfigureAwait(false);
        }
    }

    private void Launch()
    {
        var info = new ProcessStartInfo(_options.Executable ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(LogPath)!,
        };
        if (_options.Executable is null)
        {
            info.ArgumentList.Add(DllPath(Project));
        }

        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add(Url);
        foreach (var arg in _options.Arguments)
        {
            info.ArgumentList.Add(arg
                .Replace("{url}", Url, StringComparison.Ordinal)
                .Replace("{port}", Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));
        }

        // The test host's own ASP.NET settings must not leak into the service.
        info.Environment.Remove("ASPNETCORE_URLS");
        info.Environment.Remove("ASPNETCORE_ENVIRONMENT");
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in _options.Environment.Concat(EnvironmentOverrides))
        {
            info.Environment[key] = value;
        }

        lock (_logGate)
        {
            _log ??= new StreamWriter(new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
            _log.WriteLine($"# {DateTimeOffset.UtcNow:O} start: dotnet {string.Join(' ', info.ArgumentList)}");
        }

        _process?.Dispose();
        _linesAtLaunch = _lines.Count;
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        Live[this] = 0;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        _lines.Enqueue(line);
        lock (_logGate)
        {
            _log?.WriteLine(line);
        }
    }

    private async Task WaitForStatusAsync(string path, TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (HasExited)
            {
                if (CanMoveToAnotherPort())
                {
                    Port = Ports.GetFreeTcpPort();
                    _portAttempts++;
                    Launch();
                    continue;
                }

                throw new InvalidOperationException($"{Name} exited with {_process?.ExitCode} before {path} answered 200.\n{Tail()}");
            }

            // Its own "service started" line first: until then a 200 on the port could be another process's.
            if (HasLoggedStart() && await ProbeAsync(path, ct).ConfigureAwait(false) == HttpStatusCode.OK)
            {
                _started = true;
                return;
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"{Name} did not answer 200 on {path} within {timeout.TotalSeconds:0.#} s.\n{Tail()}");
            }

            await Task.Delay(25, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The service's own start line (Information level) since the last launch; not required when the caller set
    /// Serilog's level, which may hide it.
    /// </summary>
    private bool HasLoggedStart() =>
        _options.Arguments.Concat(_options.Environment.Keys).Any(a => a.Contains("Serilog", StringComparison.OrdinalIgnoreCase))
        || _lines.Skip(_linesAtLaunch).Any(l => l.Contains("\"msg\":\"service started\"", StringComparison.Ordinal));

    /// <summary>Only a first start on a port the rig picked may move: a restart keeps its port, as its peers know it.</summary>
    private bool CanMoveToAnotherPort() =>
        !_started && _options.Port is null && _process is { ExitCode: CannotListenExitCode } && _portAttempts < MaxPortAttempts;

    private bool TrySignal(int signal)
    {
        var process = _process;
        if (process is null)
        {
            return false;
        }

        try
        {
            return !process.HasExited && Kill(process.Id, signal) == 0;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
