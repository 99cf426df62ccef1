using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Spegel.TestRig;

namespace Spegel.Cluster;

internal static class ClusterCommands
{
    public const string DaprMissing = "--transport dapr needs daprd on PATH; it is not installed here (no package provides it). Use --transport standalone.";

    private static readonly string[] ClusterProcessNames = ["containerd", "Spegel", "daprd", "redis-server"];

    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(3) };

    public static async Task<int> UpAsync(Options options)
    {
        var transport = (options.Get("--transport") ?? ClusterHost.Standalone).ToLowerInvariant();
        if (transport is not (ClusterHost.Standalone or ClusterHost.Dapr))
        {
            throw new UsageException($"--transport must be standalone or dapr (got '{transport}')");
        }

        var workdir = options.Workdir("cluster");
        var nodes = options.GetInt("--nodes", 3, 1, 16);
        if (transport == ClusterHost.Dapr)
        {
            if (FindOnPath("daprd") is null)
            {
                Console.Error.WriteLine(DaprMissing);
                return 1;
            }

            // Checked here, so a missing redis-server is one line naming its package, not a failed supervisor.
            RequiredTools.Find("redis-server", "redis-server");
        }

        var clock = Stopwatch.StartNew();
        ClusterInfo info = null!;
        try
        {
            await AnsiConsole.Status().StartAsync($"starting {nodes} nodes in {Markup.Escape(workdir)}", async ctx =>
            {
                info = await StartSupervisorAsync(workdir, nodes, m => ctx.Status(Markup.Escape(m)), transport);
            });
        }
        catch (ClusterStartException ex)
        {
            Console.Error.WriteLine($"spegel: {ex.Message}");
            return 1;
        }

        AnsiConsole.MarkupLine($"[green]cluster up[/] in {clock.Elapsed.TotalSeconds:0.0} s: {nodes} nodes ({transport}), supervisor pid {info.SupervisorPid}, described in {Markup.Escape(ClusterInfo.PathIn(workdir))}");
        AnsiConsole.Write(NodesTable(info));
        AnsiConsole.MarkupLine($"resolver {Markup.Escape(info.ResolverUrl)}");
        if (info.Sidecars is { Count: > 0 } sidecars)
        {
            AnsiConsole.MarkupLine($"dapr: {sidecars.Count} daprd sidecars (logs {Markup.Escape(Path.Combine(workdir, "logs"))}/*-daprd.log), redis-server {Markup.Escape(info.RedisUrl ?? "?")} pid {info.RedisPid}, resources {Markup.Escape(info.DaprResourcesPath ?? "?")}");
        }

        AnsiConsole.MarkupLine("pull: [blue]./spegel cluster pull node-1 <image>[/]   status: [blue]./spegel cluster status[/]   stop: [blue]./spegel cluster down[/]" +
            (options.Get("--workdir") is null ? string.Empty : $"  (with --workdir {Markup.Escape(workdir)})"));
        return 0;
    }

    /// <summary>Starts the detached supervisor (setsid) and waits until it has written cluster.json.</summary>
    public static async Task<ClusterInfo> StartSupervisorAsync(string workdir, int nodes, Action<string> progress, string transport = ClusterHost.Standalone)
    {
        if (ClusterInfo.TryLoad(workdir) is { } existing)
        {
            throw new UsageException(ProcessTools.IsAlive(existing.SupervisorPid)
                ? $"a cluster is already running in {workdir} (supervisor pid {existing.SupervisorPid}); stop it with ./spegel cluster down --workdir {workdir}"
                : $"{ClusterInfo.PathIn(workdir)} is left from a cluster whose supervisor is gone; clean up with ./spegel cluster down --workdir {workdir}");
        }

        Directory.CreateDirectory(workdir);
        File.Delete(Path.Combine(workdir, Supervisor.FailedFile));
        var pidFile = Path.Combine(workdir, Supervisor.PidFile);
        File.Delete(pidFile);
        var log = Path.Combine(workdir, Supervisor.LogFile);
        var logStart = File.Exists(log) ? new FileInfo(log).Length : 0;
        var self = typeof(ClusterCommands).Assembly.Location;
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardOutput = true };

        // setsid may fork (when the job leads its group), so the supervisor's pid comes from its pid file, not $!.
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("setsid \"$@\" </dev/null >>\"$SPEGEL_SUPERVISOR_LOG\" 2>&1 &");
        start.ArgumentList.Add("sh");
        foreach (var arg in new[] { RequiredTools.Setsid, Environment.ProcessPath ?? "dotnet", self, "cluster", "supervise", "--workdir", workdir, "--nodes", nodes.ToString(CultureInfo.InvariantCulture), "--transport", transport })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["SPEGEL_SUPERVISOR_LOG"] = log;
        using (var sh = Process.Start(start) ?? throw new InvalidOperationException("could not start /bin/sh"))
        {
            await sh.StandardOutput.ReadToEndAsync();
            await sh.WaitForExitAsync();
            var clock = Stopwatch.StartNew();
            int pid;
            while (!File.Exists(pidFile) || !int.TryParse(await File.ReadAllTextAsync(pidFile), CultureInfo.InvariantCulture, out pid))
            {
                if (clock.Elapsed > TimeSpan.FromSeconds(30))
                {
                    throw new ClusterStartException($"the cluster supervisor did not start within 30 s; see {log}");
                }

                await Task.Delay(50);
            }

            var offset = logStart;
            while (true)
            {
                foreach (var line in Puller.ReadFrom(log, offset))
                {
                    progress(line.Length > 24 ? line[13..] : line);
                }

                offset = File.Exists(log) ? new FileInfo(log).Length : 0;
                if (ClusterInfo.TryLoad(workdir) is { } info)
                {
                    return info;
                }

                var failed = Path.Combine(workdir, Supervisor.FailedFile);
                if (File.Exists(failed) || !ProcessTools.IsAlive(pid) || clock.Elapsed > TimeSpan.FromSeconds(150))
                {
                    ProcessTools.Signal(pid, ProcessTools.SigTerm);
                    await ProcessTools.WaitGoneAsync(pid, TimeSpan.FromSeconds(30));
                    var why = File.Exists(failed) ? (await File.ReadAllTextAsync(failed)).Trim() : clock.Elapsed > TimeSpan.FromSeconds(150) ? "timed out after 150 s" : "the supervisor exited";
                    throw new ClusterStartException($"the cluster did not start: {why} (supervisor log: {log})");
                }

                await Task.Delay(100);
            }
        }
    }

    public static async Task<int> StatusAsync(Options options)
    {
        var info = ClusterInfo.Load(options.Workdir("cluster"));
        var table = new Table().Title($"cluster in {Markup.Escape(info.Workdir)} (supervisor {info.SupervisorPid}: {(ProcessTools.IsAlive(info.SupervisorPid) ? "[green]alive[/]" : "[red]gone[/]")})");
        foreach (var column in new[] { "node", "alive", "images", "digests advertised", "requests served", "served to peers", "fetched from peers" })
        {
            table.AddColumn(column == "node" || column == "alive" ? new TableColumn(column) : new TableColumn(column).RightAligned());
        }

        var counterSources = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in info.Nodes)
        {
            var parts = new[] { ("containerd", node.ContainerdPid), ("registry", node.RegistryPid), ("indexer", node.IndexerPid) }
                .Concat((info.Sidecars ?? []).Where(s => s.Name.StartsWith(node.Name + "-", StringComparison.Ordinal)).Select(s => (s.Name[(node.Name.Length + 1)..] + " daprd", s.Pid)));
            var dead = parts.Where(p => !ProcessTools.IsAlive(p.Item2)).Select(p => p.Item1).ToList();
            var alive = dead.Count == 0 ? "[green]yes[/]" : $"[red]no ({string.Join(", ", dead)} down)[/]";
            var indexer = await GetJsonAsync(node.IndexerUrl + "/v1/status");
            var images = indexer is { } i ? Number(i, "images") : "?";
            var digests = indexer is { } d ? Number(d, "digests") : "?";
            var counters = await RegistryCountersAsync(node);
            counterSources.Add(counters.From);
            table.AddRow(node.Name, alive, images, digests, counters.Requests.ToString(CultureInfo.InvariantCulture), Mib(counters.BytesToPeers), Mib(counters.BytesFromPeers));
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"[grey]images and digests: each indexer's GET /v1/status; request and byte counters: {Markup.Escape(string.Join(" / ", counterSources))}[/]");
        AnsiConsole.MarkupLine($"[grey]resolver {Markup.Escape(info.ResolverUrl)} ({(ProcessTools.IsAlive(info.ResolverPid) ? "alive" : "gone")})[/]");
        if (info.Sidecars is { Count: > 0 } sidecars)
        {
            var resolverSidecar = sidecars.FirstOrDefault(s => s.Name == "resolver");
            AnsiConsole.MarkupLine($"[grey]dapr: {sidecars.Count(s => ProcessTools.IsAlive(s.Pid))} of {sidecars.Count} daprd alive (resolver's: {(resolverSidecar is not null && ProcessTools.IsAlive(resolverSidecar.Pid) ? "alive" : "gone")}), redis-server {Markup.Escape(info.RedisUrl ?? "?")} ({(ProcessTools.IsAlive(info.RedisPid) ? "alive" : "gone")})[/]");
        }

        return 0;
    }

    public static async Task<int> PullAsync(Options options)
    {
        if (options.Positional is not [var nodeName, var image])
        {
            throw new UsageException("usage: ./spegel cluster pull <node> <image> [--workdir DIR]");
        }

        var info = ClusterInfo.Load(options.Workdir("cluster"));
        var node = info.Node(nodeName);
        PullReport report = null!;
        await AnsiConsole.Status().StartAsync($"pulling {Markup.Escape(image)} on {node.Name}", async _ => report = await Puller.PullAsync(node, image, CancellationToken.None));
        if (!report.Succeeded)
        {
            AnsiConsole.MarkupLine($"[red]pull failed[/] on {node.Name} after {report.Elapsed.TotalSeconds:0.0} s:");
            Console.WriteLine(report.CtrOutput.Trim());
        }

        AnsiConsole.Write(BlobTable(report));
        AnsiConsole.MarkupLine($"{node.Name}: {Markup.Escape(image)} in {report.Elapsed.TotalSeconds:0.00} s, {report.Blobs.Count} blobs, {Mib(report.Bytes)} from {Markup.Escape(report.Summary)}");
        return report.Succeeded ? 0 : 1;
    }

    public static async Task<int> DownAsync(Options options)
    {
        var workdir = options.Workdir("cluster");
        var info = ClusterInfo.TryLoad(workdir);
        if (info is null)
        {
            var mounts = Unmount.Below(workdir);
            await Unmount.BelowAsync(workdir);
            Console.WriteLine($"no cluster running in {workdir}" + (mounts.Count > 0 ? $" (unmounted {mounts.Count} left-over mounts)" : string.Empty));
            return 0;
        }

        var clock = Stopwatch.StartNew();
        var (ok, report) = await StopAsync(info);
        Console.WriteLine($"cluster down in {clock.Elapsed.TotalSeconds:0.0} s");
        Console.WriteLine(report);
        return ok ? 0 : 1;
    }

    /// <summary>Signals the supervisor, falls back to killing what is left, then verifies no process, mount or port remains.</summary>
    public static async Task<(bool Ok, string Report)> StopAsync(ClusterInfo info)
    {
        if (ProcessTools.Signal(info.SupervisorPid, ProcessTools.SigTerm))
        {
            await ProcessTools.WaitGoneAsync(info.SupervisorPid, TimeSpan.FromSeconds(60));
        }

        // A supervisor that was killed (or hung) leaves its children: stop those recorded in cluster.json.
        var leftovers = info.Pids.Where(p => ProcessTools.IsAlive(p) && ProcessTools.CommandLine(p) is var c && (IsClusterProcess(c))).ToList();
        foreach (var pid in leftovers)
        {
            ProcessTools.Signal(-pid, ProcessTools.SigKill);
            ProcessTools.Signal(pid, ProcessTools.SigKill);
        }

        foreach (var pid in leftovers)
        {
            await ProcessTools.WaitGoneAsync(pid, TimeSpan.FromSeconds(10));
        }

        await Unmount.BelowAsync(info.Workdir);
        foreach (var node in info.Nodes)
        {
            var dir = Path.Combine(info.Workdir, node.Name);
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        File.Delete(ClusterInfo.PathIn(info.Workdir));

        var alive = info.Pids.Where(ProcessTools.IsAlive).ToList();
        var mountsLeft = Unmount.Below(info.Workdir);
        var listening = new List<Uri>();
        foreach (var url in info.Urls)
        {
            if (await ProcessTools.IsListeningAsync(url))
            {
                listening.Add(url);
            }
        }

        var ok = alive.Count == 0 && mountsLeft.Count == 0 && listening.Count == 0;
        var pids = info.Pids.Count();
        var report = ok
            ? $"verified: none of the {pids} processes runs, no mount below {info.Workdir}, none of the {info.Urls.Count()} ports accepts connections" +
              (leftovers.Count > 0 ? $" ({leftovers.Count} processes had to be killed: the supervisor did not stop them)" : string.Empty)
            : $"NOT clean: processes alive [{string.Join(", ", alive)}], mounts [{string.Join(", ", mountsLeft)}], listening [{string.Join(", ", listening)}]";
        return (ok, report);
    }

    /// <summary>A recorded pid still names one of ours (pids are reused): containerd, a service, daprd or redis-server.</summary>
    private static bool IsClusterProcess(string commandLine) =>
        ClusterProcessNames.Any(name => commandLine.Contains(name, StringComparison.Ordinal));

    public static Table NodesTable(ClusterInfo info)
    {
        var table = new Table();
        foreach (var column in new[] { "node", "registry", "indexer", "containerd socket", "hosts dir" })
        {
            table.AddColumn(column);
        }

        foreach (var node in info.Nodes)
        {
            table.AddRow(node.Name, node.RegistryUrl, node.IndexerUrl, Markup.Escape(node.ContainerdSocket), Markup.Escape(node.HostsDirectory));
        }

        return table;
    }

    public static Table BlobTable(PullReport report)
    {
        var table = new Table();
        table.AddColumn("kind");
        table.AddColumn("digest");
        table.AddColumn("source");
        table.AddColumn(new TableColumn("MiB").RightAligned());
        foreach (var blob in report.Blobs)
        {
            var source = blob.FromPeer ? $"[green]peer {Markup.Escape(blob.Source)}[/]" : blob.Source == BlobSource.Upstream ? "[yellow]upstream[/]" : Markup.Escape(blob.Source);
            table.AddRow(blob.Handler, Markup.Escape(Short(blob.Key)), source, Mib(blob.Bytes, unit: false));
        }

        return table;
    }

    public static string Short(string key) => key.StartsWith("sha256:", StringComparison.Ordinal) && key.Length > 19 ? key[..19] + "…" : key;

    public static string Mib(long bytes, bool unit = true) =>
        (bytes / (1024.0 * 1024.0)).ToString("0.0", CultureInfo.InvariantCulture) + (unit ? " MiB" : string.Empty);

    public static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);

    /// <summary>
    /// The registry's counters: its GET /v1/status (totals) when it serves one, else counted from its JSON request
    /// log (requests = manifest and blob requests; from peers = bytes of 2xx answers whose source is a peer; to peers =
    /// bytes of 2xx GETs answered from local content, which on a node containerd only asks for what it lacks).
    /// </summary>
    private static async Task<(long Requests, long BytesToPeers, long BytesFromPeers, string From)> RegistryCountersAsync(NodeInfo node)
    {
        var lines = Puller.Requests(Puller.ReadFrom(node.RegistryLog, 0)).Where(r => r.Handler is "blob" or "manifest").ToList();
        var requests = lines.Count;
        if (await GetJsonAsync(node.RegistryUrl + "/v1/status") is { } status && status.TryGetProperty("totals", out var totals))
        {
            return (requests, Long(totals, "bytesToPeers"), Long(totals, "bytesFromPeers"), "registry GET /v1/status (requests: request log)");
        }

        var hits = lines.Where(r => r.Status is >= 200 and < 300 && r.Method == "GET").ToList();
        return (
            requests,
            hits.Where(r => r.Source == "local").Sum(r => r.Bytes),
            hits.Where(r => r.Source is not ("local" or "miss" or "filtered" or "unavailable")).Sum(r => r.Bytes),
            "registry request log");
    }

    private static async Task<JsonElement?> GetJsonAsync(string url)
    {
        try
        {
            using var response = await Http.GetAsync(new Uri(url));
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return json.RootElement.ValueKind == JsonValueKind.Object ? json.RootElement.Clone() : null;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException)
        {
            return null;
        }
    }

    private static string Number(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? value.ToString() : "?";

    private static long Long(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.TryGetInt64(out var number) ? number : 0;
}
