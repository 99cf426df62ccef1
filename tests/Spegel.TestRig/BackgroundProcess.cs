using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Spegel.TestRig;

/// <summary>
/// A long-running daemon started in its own session and process group (via <c>setsid</c>), output appended to a
/// log file. Stopping signals the whole group, so nothing it forked outlives the test. Groups still alive when the
/// test process exits are killed then as well.
/// </summary>
public sealed partial class BackgroundProcess : IAsyncDisposable
{
    private const int SigKill = 9;
    private const int SigTerm = 15;

    private static readonly ConcurrentDictionary<int, BackgroundProcess> Live = new();

    private readonly Process _process;

    static BackgroundProcess()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var p in Live.Values)
            {
                p.SignalGroup(SigKill);
            }
        };
    }

    private BackgroundProcess(Process process, string logPath, string commandLine)
    {
        _process = process;
        LogPath = logPath;
        CommandLine = commandLine;
    }

    public int Id => _process.Id;

    public string LogPath { get; }

    public string CommandLine { get; }

    public bool HasExited => _process.HasExited;

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// <summary>Starts <paramref name="fileName"/> as the leader of a new process group, stdout and stderr appended to <paramref name="logPath"/>.</summary>
    public static BackgroundProcess Start(string fileName, IEnumerable<string> arguments, string logPath, string? workingDirectory = null)
    {
        var args = arguments.ToList();
        var startInfo = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? string.Empty,
        };

        // sh is not a group leader, so setsid execs in place: the daemon keeps this pid and leads its own group.
        startInfo.ArgumentList.Add("-c");
        startInfo.ArgumentList.Add("exec \"$0\" \"$@\" </dev/null >>\"$SPEGEL_RIG_LOG\" 2>&1");
        startInfo.ArgumentList.Add(RequiredTools.Setsid);
        startInfo.ArgumentList.Add(fileName);
        foreach (var arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }

        startInfo.Environment["SPEGEL_RIG_LOG"] = logPath;
        var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var started = new BackgroundProcess(process, logPath, string.Join(' ', args.Prepend(fileName).Select(ProcessRunner.Quote)));
        Live[process.Id] = started;
        return started;
    }

    /// <summary>SIGTERM to the group, then SIGKILL when it has not exited within <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (!_process.HasExited)
        {
            SignalGroup(SigTerm);
            using var timeout = new CancellationTokenSource(grace);
            try
            {
                await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        await KillAsync().ConfigureAwait(false);
    }

    /// <summary>SIGKILL to the whole group, and wait until the leader is gone.</summary>
    public async Task KillAsync()
    {
        SignalGroup(SigKill);
        await _process.WaitForExitAsync().ConfigureAwait(false);
        Live.TryRemove(_process.Id, out _);
    }

    /// <summary>The last <paramref name="maxChars"/> characters of the log, for failure messages.</summary>
    public string ReadLogTail(int maxChars = 4000)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd();
            return text.Length <= maxChars ? text : text[^maxChars..];
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync().ConfigureAwait(false);
        _process.Dispose();
    }

    private void SignalGroup(int signal)
    {
        // A negative pid addresses the process group; fall back to the pid in case setsid had not run yet.
        if (Kill(-_process.Id, signal) != 0)
        {
            Kill(_process.Id, signal);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
