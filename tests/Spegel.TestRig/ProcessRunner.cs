using System.Diagnostics;
using System.Text;

namespace Spegel.TestRig;

/// <summary>The outcome of a finished command.</summary>
public sealed record CommandResult(string CommandLine, int ExitCode, string StdOut, string StdErr, TimeSpan Elapsed)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>This result, or an exception carrying the command line and everything it printed.</summary>
    public CommandResult EnsureSuccess() =>
        Succeeded ? this : throw new InvalidOperationException($"`{CommandLine}` exited with {ExitCode} after {Elapsed.TotalSeconds:0.0} s.\nstdout:\n{StdOut}\nstderr:\n{StdErr}");

    public override string ToString() => $"`{CommandLine}` → {ExitCode} ({Elapsed.TotalMilliseconds:0} ms)\n{StdOut}{StdErr}";
}

/// <summary>Runs short-lived commands to completion with a timeout, capturing their output.</summary>
public static class ProcessRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Runs <paramref name="fileName"/> with <paramref name="arguments"/>. A non-zero exit is a result, not an
    /// exception (call <see cref="CommandResult.EnsureSuccess"/>); exceeding the timeout kills the process tree
    /// and throws <see cref="TimeoutException"/> with what it printed so far.
    /// </summary>
    public static async Task<CommandResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        TimeSpan? timeout = null,
        string? workingDirectory = null,
        CancellationToken ct = default)
    {
        var args = arguments.ToList();
        var commandLine = string.Join(' ', args.Prepend(fileName).Select(Quote));
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? string.Empty,
        };
        foreach (var arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = startInfo };
        process.OutputDataReceived += (_, e) => Append(stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(stderr, e.Data);
        var clock = Stopwatch.StartNew();
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout ?? DefaultTimeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            throw new TimeoutException($"`{commandLine}` did not finish within {(timeout ?? DefaultTimeout).TotalSeconds:0.#} s.\nstdout:\n{Read(stdout)}\nstderr:\n{Read(stderr)}");
        }

        // The parameterless wait drains the asynchronous output readers.
        process.WaitForExit();
        return new CommandResult(commandLine, process.ExitCode, Read(stdout), Read(stderr), clock.Elapsed);
    }

    public static Task<CommandResult> RunAsync(string fileName, params string[] arguments) => RunAsync(fileName, arguments, null);

    internal static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=@,+%".Contains(c, StringComparison.Ordinal))
            ? arg
            : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static void Append(StringBuilder builder, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (builder)
        {
            builder.Append(line).Append('\n');
        }
    }

    private static string Read(StringBuilder builder)
    {
        lock (builder)
        {
            return builder.ToString();
        }
    }
}
