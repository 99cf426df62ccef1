using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Spegel.Core;

namespace Spegel.TestRig;

public sealed class ContainerdInstanceOptions
{
    /// <summary>The namespace <c>ctr</c> works in; k8s.io like kubelet, so the services' default matches.</summary>
    public string Namespace { get; init; } = "k8s.io";

    /// <summary>Snapshotter for unpacking pulls; null picks overlayfs when the kernel mounts it here, else native.</summary>
    public string? Snapshotter { get; init; }

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Where the instance keeps root, state, socket and config; a new temporary directory when null. A local
    /// cluster puts it under its workdir so that everything it mounts is found and unmounted there.
    /// </summary>
    public string? Directory { get; init; }
}

/// <summary>
/// A real containerd (the Debian package's binary) with its own root, state, sockets and config under a temp
/// directory, so several can run side by side. The CRI plugin is off; <c>ctr</c> drives pulls as kubelet would
/// (fetch, then unpack into the snapshotter). Kill, stop and restart keep the root and the socket path.
/// </summary>
public sealed class ContainerdInstance : RigDaemon
{
    private static readonly Lazy<Task<(string Name, string Reason)>> DetectedSnapshotter = new(DetectSnapshotterAsync);

    private ContainerdInstance(string directory, string @namespace, string snapshotter, TimeSpan startTimeout)
        : base(directory, Path.Combine(directory, "containerd.log"), startTimeout, stopGrace: TimeSpan.FromSeconds(10))
    {
        Namespace = @namespace;
        Snapshotter = snapshotter;
        Root = Path.Combine(directory, "root");
        State = Path.Combine(directory, "state");
        Socket = Path.Combine(directory, "containerd.sock");
        ConfigPath = Path.Combine(directory, "config.toml");
    }

    public string Root { get; }

    public string State { get; }

    /// <summary>The gRPC socket (the ttrpc socket is beside it with a <c>.ttrpc</c> suffix).</summary>
    public string Socket { get; }

    public string ConfigPath { get; }

    public string Namespace { get; }

    public string Snapshotter { get; }

    /// <summary>The content store directory: <c>&lt;root&gt;/io.containerd.content.v1.content</c>.</summary>
    public string ContentPath => Path.Combine(Root, "io.containerd.content.v1.content");

    /// <summary>Why the snapshotter in use was chosen (overlayfs probe result), for reports and failure messages.</summary>
    public static async Task<string> DescribeSnapshotterChoiceAsync()
    {
        var (name, reason) = await DetectedSnapshotter.Value.ConfigureAwait(false);
        return $"{name}: {reason}";
    }

    public static async Task<ContainerdInstance> StartAsync(ContainerdInstanceOptions? options = null, CancellationToken ct = default)
    {
        options ??= new ContainerdInstanceOptions();
        _ = RequiredTools.Containerd;
        _ = RequiredTools.Ctr;
        var snapshotter = options.Snapshotter ?? (await DetectedSnapshotter.Value.ConfigureAwait(false)).Name;
        var directory = options.Directory ?? RigDirectory.Create("ctrd");
        System.IO.Directory.CreateDirectory(directory);
        var instance = new ContainerdInstance(directory, options.Namespace, snapshotter, options.StartTimeout);
        try
        {
            instance.WriteConfig();
            await instance.LaunchAsync(ct).ConfigureAwait(false);
            return instance;
        }
        catch
        {
            await instance.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs <c>ctr --address &lt;socket&gt; -n &lt;namespace&gt; args…</c> (in <see cref="Namespace"/> unless another is given).</summary>
    public Task<CommandResult> CtrAsync(IEnumerable<string> args, TimeSpan? timeout = null, string? @namespace = null, CancellationToken ct = default) =>
        CtrAsync(Socket, @namespace ?? Namespace, args, timeout, ct);

    /// <summary><c>ctr</c> against any containerd socket, for tools that do not own the instance (a cluster's CLI).</summary>
    public static Task<CommandResult> CtrAsync(string socket, string @namespace, IEnumerable<string> args, TimeSpan? timeout = null, CancellationToken ct = default) =>
        ProcessRunner.RunAsync(RequiredTools.Ctr, new[] { "--address", socket, "--namespace", @namespace }.Concat(args), timeout, null, ct);

    /// <summary>
    /// <c>ctr images pull</c> as kubelet would pull: this machine's platform, unpacked into <see cref="Snapshotter"/>.
    /// With <paramref name="unpack"/> false it runs <c>ctr content fetch</c> instead (ctr 1.6 has no --skip-unpack):
    /// same content and image record, no snapshots. A failed pull is a result (check
    /// <see cref="CommandResult.Succeeded"/>), not an exception.
    /// </summary>
    public Task<CommandResult> PullAsync(
        string reference,
        string? hostsDir = null,
        bool plainHttp = true,
        string? platform = null,
        bool allPlatforms = false,
        bool unpack = true,
        TimeSpan? timeout = null,
        CancellationToken ct = default)
    {
        var args = unpack ? new List<string> { "images", "pull", "--snapshotter", Snapshotter } : ["content", "fetch"];

        if (hostsDir is not null)
        {
            args.AddRange(["--hosts-dir", hostsDir]);
        }

        if (plainHttp)
        {
            args.Add("--plain-http");
        }

        if (allPlatforms)
        {
            args.Add("--all-platforms");
        }
        else if (platform is not null)
        {
            args.AddRange(["--platform", platform]);
        }

        args.Add(reference);
        return CtrAsync(args, timeout ?? TimeSpan.FromSeconds(120), ct: ct);
    }

    /// <summary><c>ctr images rm --sync</c>: removes the image and waits for garbage collection of its content.</summary>
    public Task<CommandResult> RemoveImageAsync(string reference, CancellationToken ct = default) =>
        CtrAsync(["images", "rm", "--sync", reference], ct: ct);

    /// <summary>Image names in the namespace, via <c>ctr images ls -q</c>.</summary>
    public async Task<IReadOnlyList<string>> ListImagesAsync(CancellationToken ct = default)
    {
        var result = (await CtrAsync(["images", "ls", "-q"], ct: ct).ConfigureAwait(false)).EnsureSuccess();
        return result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    /// <summary>Where the content store keeps a blob (whether or not it is there).</summary>
    public string BlobPath(Digest digest) => Path.Combine(ContentPath, "blobs", digest.Algorithm, digest.Hex);

    protected override string DisplayName => "containerd";

    protected override string Endpoint => Socket;

    protected override (string Executable, IReadOnlyList<string> Arguments) Command() => (RequiredTools.Containerd, ["--config", ConfigPath]);

    protected override Task<bool> IsAnsweringAsync(CancellationToken ct) => CanConnectAsync(Socket, ct);

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
            .AppendLine("# No debug socket and no metrics listener: nothing that could clash between instances.")
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

    private static async Task<bool> CanConnectAsync(string path, CancellationToken ct)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        using var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string Toml(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    /// <summary>
    /// overlayfs when an overlay mount works in this sandbox (root, a kernel with overlay, a temp dir that is
    /// not itself on overlayfs); native otherwise. SPEGEL_RIG_SNAPSHOTTER overrides.
    /// </summary>
    private static async Task<(string Name, string Reason)> DetectSnapshotterAsync()
    {
        if (Environment.GetEnvironmentVariable("SPEGEL_RIG_SNAPSHOTTER") is { Length: > 0 } forced)
        {
            return (forced, "set by SPEGEL_RIG_SNAPSHOTTER");
        }

        var probe = RigDirectory.Create("ovl");
        try
        {
            foreach (var d in new[] { "lower", "upper", "work", "merged" })
            {
                System.IO.Directory.CreateDirectory(Path.Combine(probe, d));
            }

            await File.WriteAllTextAsync(Path.Combine(probe, "lower", "probe"), "x").ConfigureAwait(false);
            var options = $"lowerdir={probe}/lower,upperdir={probe}/upper,workdir={probe}/work";
            var mount = await ProcessRunner.RunAsync(RequiredTools.Mount, ["-t", "overlay", "overlay", "-o", options, Path.Combine(probe, "merged")], TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            if (!mount.Succeeded)
            {
                return ("native", $"an overlay mount failed here ({mount.StdErr.Trim()})");
            }

            await ProcessRunner.RunAsync(RequiredTools.Umount, [Path.Combine(probe, "merged")]).ConfigureAwait(false);
            return ("overlayfs", "an overlay mount works here");
        }
        finally
        {
            await RigDirectory.RemoveAsync(probe).ConfigureAwait(false);
        }
    }
}
