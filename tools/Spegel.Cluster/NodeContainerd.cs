using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Spegel.TestRig;

namespace Spegel.Cluster;

/// <summary>
/// A node's containerd with its root, state, socket and config under the node's folder in the cluster workdir
/// (adapted from the rig's <see cref="ContainerdInstance"/>, which keeps its folders under the temp path), so that
/// everything the cluster mounts is below the workdir and <c>cluster down</c> can find and unmount it.
/// </summary>
internal sealed class NodeContainerd : IAsyncDisposable
{
    public const string Namespace = "k8s.io";

    private BackgroundProcess? _process;

    private NodeContainerd(string directory, string snapshotter)
    {
        Directory = directory;
        Snapshotter = snapshotter;
        Root = Path.Combine(directory, "root");
        State = Path.Combine(directory, "state");
        Socket = Path.Combine(directory, "containerd.sock");
        ConfigPath = Path.Combine(directory, "config.toml");
        LogPath = Path.Combine(directory, "containerd.log");
    }

    public string Directory { get; }

    public string Root { get; }

    public string State { get; }

    public string Socket { get; }

    public string ConfigPath { get; }

    public string LogPath { get; }

    public string Snapshotter { get; }

    public string ContentPath => Path.Combine(Root, "io.containerd.content.v1.content");

    public int Pid => _process?.Id ?? 0;

    public static async Task<NodeContainerd> StartAsync(string directory, CancellationToken ct)
    {
        _ = RequiredTools.Containerd;
        _ = RequiredTools.Ctr;
        var socket = Path.Combine(directory, "containerd.sock.ttrpc");
        if (Encoding.UTF8.GetByteCount(socket) > 100)
        {
            throw new UsageException($"the workdir path is too long for containerd's Unix sockets ({socket}); use a shorter --workdir");
        }

        // The rig's probe: overlayfs when an overlay mount works here, else native (SPEGEL_RIG_SNAPSHOTTER overrides).
        var choice = await ContainerdInstance.DescribeSnapshotterChoiceAsync();
        var node = new NodeContainerd(directory, choice.Split(':', 2)[0]);
        try
        {
            node.WriteConfig();
            await node.LaunchAsync(ct);
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    public Task<CommandResult> CtrAsync(IEnumerable<string> args, TimeSpan? timeout = null, CancellationToken ct = default) =>
        Ctr(Socket, args, timeout, ct);

    public static Task<CommandResult> Ctr(string socket, IEnumerable<string> args, TimeSpan? timeout = null, CancellationToken ct = default) =>
        ProcessRunner.RunAsync(RequiredTools.Ctr, new[] { "--address", socket, "--namespace", Namespace }.Concat(args), timeout, null, ct);

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.StopAsync(TimeSpan.FromSeconds(5));
            await _process.DisposeAsync();
            _process = null;
        }
    }

    private void WriteConfig()
    {
        System.IO.Directory.CreateDirectory(Root);
        System.IO.Directory.CreateDirectory(State);
        var config = new StringBuilder()
            .AppendLine("version = 2")
            .AppendLine($"root = {Toml(Root)}")
            .AppendLine($"state = {Toml(State)}")
            .AppendLine("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]")
            .AppendLine()
            .AppendLine("[grpc]")
            .AppendLine($"  address = {Toml(Socket)}")
            .AppendLine()
            .AppendLine("[ttrpc]")
            .AppendLine($"  address = {Toml(Socket + ".ttrpc")}")
            .AppendLine()
            .AppendLine("[debug]")
            .AppendLine("  address = \"\"")
            .AppendLine("  level = \"info\"")
            .AppendLine()
            .AppendLine("[metrics]")
            .AppendLine("  address = \"\"")
            .AppendLine()
            .AppendLine("[plugins]")
            .AppendLine("  [plugins.\"io.containerd.internal.v1.opt\"]")
            .AppendLine($"    path = {Toml(Path.Combine(Directory, "opt"))}")
            .ToString();
        File.WriteAllText(ConfigPath, config);
    }

    private async Task LaunchAsync(CancellationToken ct)
    {
        _process = BackgroundProcess.Start(RequiredTools.Containerd, ["--config", ConfigPath], LogPath, Directory);
        var clock = Stopwatch.StartNew();
        while (!await CanConnectAsync(Socket, ct))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"containerd exited with {_process.ExitCode} during start-up. Log tail ({LogPath}):\n{_process.ReadLogTail()}");
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"containerd did not answer on {Socket} within 30 s. Log tail:\n{_process.ReadLogTail()}");
            }

            await Task.Delay(20, ct);
        }
    }

    private static async Task<bool> CanConnectAsync(string path, CancellationToken ct)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        using var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string Toml(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
