using System.Runtime.InteropServices;

namespace Spegel.Cluster;

/// <summary>
/// <c>cluster supervise</c> (hidden): the detached process <c>cluster up</c> starts with setsid. It owns every
/// process of the cluster, writes <c>DIR/cluster.json</c> once all are ready, and on SIGTERM (<c>cluster down</c>)
/// stops them, unmounts what is mounted below DIR, removes the node folders and <c>cluster.json</c>.
/// </summary>
internal static class Supervisor
{
    public const string FailedFile = "supervisor.failed";
    public const string LogFile = "supervisor.log";
    public const string PidFile = "supervisor.pid";

    public static async Task<int> RunAsync(Options options)
    {
        var workdir = options.Workdir("cluster");
        var nodes = options.GetInt("--nodes", 3, 1, 16);
        var transport = options.Get("--transport") ?? ClusterHost.Standalone;
        using var stop = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true);

        Directory.CreateDirectory(workdir);
        await File.WriteAllTextAsync(Path.Combine(workdir, PidFile), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Log($"supervisor {Environment.ProcessId}: starting {nodes} nodes in {workdir}, transport {transport}");
        ClusterHost host;
        try
        {
            host = await ClusterHost.StartAsync(workdir, nodes, transport, Log, stop.Token);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log($"start failed: {ex}");
            // One line for `cluster up` to print: the first line of the message names the part that failed and its log.
            await File.WriteAllTextAsync(Path.Combine(workdir, FailedFile), ex.Message.Split('\n')[0].Trim() + Environment.NewLine);
            return 1;
        }

        try
        {
            host.Describe(Environment.ProcessId).Save();
            Log("ready: " + ClusterInfo.PathIn(workdir));
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException)
        {
            Log("stopping (signal)");
        }
        finally
        {
            await host.DisposeAsync();
            File.Delete(ClusterInfo.PathIn(workdir));
            File.Delete(Path.Combine(workdir, PidFile));
            Log("stopped: processes ended, mounts below the workdir removed, node folders deleted");
        }

        return 0;
    }

    private static void Log(string message) =>
        Console.WriteLine($"{DateTimeOffset.Now:HH:mm:ss.fff} {message}");
}
