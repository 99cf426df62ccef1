using System.Diagnostics;

namespace Spegel.TestRig;

/// <summary>
/// The life cycle every daemon of the rig shares (containerd, docker-registry): one background process at a time
/// in its own directory, started and waited for until it answers, stopped gracefully or killed, restarted on the same
/// directory (so stored content, sockets and ports survive), and the directory removed when disposed.
/// </summary>
public abstract class RigDaemon : IAsyncDisposable
{
    private readonly TimeSpan _stopGrace;
    private BackgroundProcess? _process;
    private bool _disposed;

    protected RigDaemon(string directory, string logPath, TimeSpan startTimeout, TimeSpan stopGrace)
    {
        Directory = directory;
        LogPath = logPath;
        StartTimeout = startTimeout;
        _stopGrace = stopGrace;
    }

    public string Directory { get; }

    public string LogPath { get; }

    public bool IsRunning => _process is { HasExited: false };

    public int? ProcessId => IsRunning ? _process!.Id : null;

    protected TimeSpan StartTimeout { get; }

    /// <summary>The executable's name in failure messages.</summary>
    protected abstract string DisplayName { get; }

    /// <summary>What <see cref="IsAnsweringAsync"/> probes, for failure messages.</summary>
    protected abstract string Endpoint { get; }

    /// <summary>Graceful stop: SIGTERM, then SIGKILL after the daemon's grace period.</summary>
    public async Task StopAsync()
    {
        if (_process is not null)
        {
            await _process.StopAsync(_stopGrace).ConfigureAwait(false);
        }
    }

    /// <summary>SIGKILL, like a crash or an OOM kill: nothing is cleaned up (a socket file stays behind, stale).</summary>
    public async Task KillAsync()
    {
        if (_process is not null)
        {
            await _process.KillAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Stops the daemon if it runs, then starts it again on the same directory.</summary>
    public async Task RestartAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await StopAsync().ConfigureAwait(false);
        await LaunchAsync(ct).ConfigureAwait(false);
    }

    public string ReadLogTail(int maxChars = 4000) => _process?.ReadLogTail(maxChars) ?? string.Empty;

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_process is not null)
        {
            await _process.DisposeAsync().ConfigureAwait(false);
        }

        await RigDirectory.RemoveAsync(Directory).ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    /// <summary>The command that runs the daemon in the foreground.</summary>
    protected abstract (string Executable, IReadOnlyList<string> Arguments) Command();

    /// <summary>True once the daemon serves (its socket accepts, its API answers).</summary>
    protected abstract Task<bool> IsAnsweringAsync(CancellationToken ct);

    /// <summary>Starts the process and waits until it answers; an early exit or the start timeout throws with the log tail.</summary>
    protected async Task LaunchAsync(CancellationToken ct)
    {
        if (_process is not null)
        {
            await _process.DisposeAsync().ConfigureAwait(false);
        }

        var (executable, arguments) = Command();
        _process = BackgroundProcess.Start(executable, arguments, LogPath, Directory);
        var clock = Stopwatch.StartNew();
        while (!await IsAnsweringAsync(ct).ConfigureAwait(false))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{DisplayName} exited with {_process.ExitCode} during start-up. Log tail ({LogPath}):\n{ReadLogTail()}");
            }

            if (clock.Elapsed > StartTimeout)
            {
                throw new TimeoutException($"{DisplayName} did not answer on {Endpoint} within {StartTimeout.TotalSeconds:0} s. Log tail:\n{ReadLogTail()}");
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }
    }
}
