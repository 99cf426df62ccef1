using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Spegel.Core.Events;
using Spegel.TestRig;
using Xunit.Abstractions;
using YamlDotNet.RepresentationModel;

namespace Spegel.Cluster.Tests;

/// <summary>
/// <c>cluster up --transport dapr</c> with a fake <c>daprd</c> on PATH (<see cref="FakeDaprd"/>): the real runtime
/// cannot be installed here, so these tests check what the tool hands daprd (arguments, rendered components, the
/// services' environment), that a real redis-server backs the components, and that nothing outlives the cluster.
/// They do not show that a real daprd accepts the files or that the services work through it.
/// </summary>
public sealed partial class DaprTransportTests(ITestOutputHelper output)
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Up_DaprdExitsAtOnce_OneLineNamingDaprdAndItsLog_NothingLeft()
    {
        await using var daprd = FakeDaprd.Create(FakeDaprdKind.Fails);
        var workdir = RigDirectory.Create("cltd");
        try
        {
            var up = await ClusterTool.RunWithPathAsync(daprd.Directory, CommandTimeout, "cluster", "up", "--nodes", "1", "--transport", "dapr", "--workdir", workdir);
            output.WriteLine(up.ToString());
            Assert.Equal(1, up.ExitCode);
            var lines = up.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var line = Assert.Single(lines);
            var match = DaprdFailed().Match(line);
            Assert.True(match.Success, $"not the expected one-line failure: {line}");
            var log = match.Groups["log"].Value;
            Assert.Equal(Path.Combine(workdir, "logs", "resolver-daprd.log"), log);
            Assert.Contains(FakeDaprd.FailureLine, await File.ReadAllTextAsync(log), StringComparison.Ordinal);

            // The resolver's sidecar is started (and awaited) before any node's: only it ran.
            var run = Assert.Single(daprd.Runs());
            Assert.Equal("resolver", Flag(run.Value, "--app-id"));

            // redis-server had been started (the supervisor log says where) and was stopped again.
            var supervisorLog = await File.ReadAllTextAsync(Path.Combine(workdir, "supervisor.log"));
            var redis = RedisStarted().Match(supervisorLog);
            Assert.True(redis.Success, "the supervisor log does not show redis-server starting:\n" + supervisorLog);
            var redisPid = int.Parse(redis.Groups["pid"].Value, CultureInfo.InvariantCulture);
            var redisPort = int.Parse(redis.Groups["port"].Value, CultureInfo.InvariantCulture);
            var supervisorPid = int.Parse(SupervisorStarted().Match(supervisorLog).Groups["pid"].Value, CultureInfo.InvariantCulture);
            output.WriteLine($"redis-server was pid {redisPid} on port {redisPort}; supervisor pid {supervisorPid}");
            Assert.False(ClusterTool.IsAlive(redisPid), $"redis-server {redisPid} still runs");
            Assert.False(await Ports.IsListeningAsync(redisPort), $"redis port {redisPort} still accepts connections");
            Assert.False(ClusterTool.IsAlive(supervisorPid), $"supervisor {supervisorPid} still runs");
            Assert.Empty(ProcessesUsing(workdir));
            Assert.Empty(RigDirectory.MountsBelow(workdir));
            Assert.False(File.Exists(Path.Combine(workdir, "cluster.json")));
            Assert.False(Directory.Exists(Path.Combine(workdir, "redis")));
            Assert.False(Directory.Exists(Path.Combine(workdir, "node-1")));
        }
        finally
        {
            await RigDirectory.RemoveAsync(workdir);
        }
    }

    [Fact]
    public async Task Up_WithDaprd_OneSidecarPerServiceOnRenderedRedisComponents_DownLeavesNothing()
    {
        await using var daprd = FakeDaprd.Create(FakeDaprdKind.Serves);
        var workdir = RigDirectory.Create("cltd");
        try
        {
            var up = await ClusterTool.RunWithPathAsync(daprd.Directory, CommandTimeout, "cluster", "up", "--nodes", "2", "--transport", "dapr", "--workdir", workdir);
            output.WriteLine(up.ToString());
            Assert.True(up.Succeeded, up.ToString());

            using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(workdir, "cluster.json")));
            var root = json.RootElement;
            Assert.Equal("dapr", root.GetProperty("transport").GetString());
            var redisUrl = new Uri(root.GetProperty("redisUrl").GetString()!);
            var redisPid = root.GetProperty("redisPid").GetInt32();
            Assert.True(ClusterTool.IsAlive(redisPid), $"redis-server {redisPid} is not running");
            Assert.Equal("+PONG", await RedisAsync(redisUrl.Port, "PING"));
            Assert.Contains("appendonly\r\n$2\r\nno", await RedisAsync(redisUrl.Port, "CONFIG GET appendonly"), StringComparison.Ordinal);
            Assert.Contains("save\r\n$0\r\n", await RedisAsync(redisUrl.Port, "CONFIG GET save"), StringComparison.Ordinal);

            // Which service each sidecar serves, and the port that service listens on.
            var apps = new Dictionary<string, (string AppId, int Port, int Pid)>(StringComparer.Ordinal)
            {
                ["resolver"] = ("resolver", new Uri(root.GetProperty("resolverUrl").GetString()!).Port, root.GetProperty("resolverPid").GetInt32()),
            };
            foreach (var node in root.GetProperty("nodes").EnumerateArray())
            {
                var name = node.GetProperty("name").GetString()!;
                apps[name + "-registry"] = ("registry", new Uri(node.GetProperty("registryUrl").GetString()!).Port, node.GetProperty("registryPid").GetInt32());
                apps[name + "-indexer"] = ("indexer", new Uri(node.GetProperty("indexerUrl").GetString()!).Port, node.GetProperty("indexerPid").GetInt32());
            }

            var resources = root.GetProperty("daprResourcesPath").GetString()!;
            var sidecars = root.GetProperty("sidecars").EnumerateArray().ToList();
            var runs = daprd.Runs();
            Assert.Equal(5, sidecars.Count);
            Assert.Equal(5, runs.Count);
            var ports = new List<int> { redisUrl.Port };
            foreach (var sidecar in sidecars)
            {
                var name = sidecar.GetProperty("name").GetString()!;
                var (appId, appPort, appPid) = apps[name];
                var pid = sidecar.GetProperty("pid").GetInt32();
                Assert.True(runs.ContainsKey(pid), $"no daprd run recorded for {name} (pid {pid})");
                var argv = runs[pid];
                output.WriteLine($"{name}: daprd {string.Join(' ', argv.Select(a => a.Length == 0 ? "''" : a))}");
                Assert.True(ClusterTool.IsAlive(pid), $"daprd for {name} ({pid}) is not running");
                Assert.Equal(appId, Flag(argv, "--app-id"));
                Assert.Equal(appPort.ToString(CultureInfo.InvariantCulture), Flag(argv, "--app-port"));
                Assert.Equal("http", Flag(argv, "--app-protocol"));
                Assert.Equal("127.0.0.1", Flag(argv, "--dapr-listen-addresses"));
                var http = sidecar.GetProperty("daprHttpPort").GetInt32();
                var grpc = sidecar.GetProperty("daprGrpcPort").GetInt32();
                var internalGrpc = sidecar.GetProperty("daprInternalGrpcPort").GetInt32();
                var metrics = sidecar.GetProperty("metricsPort").GetInt32();
                Assert.Equal(http.ToString(CultureInfo.InvariantCulture), Flag(argv, "--dapr-http-port"));
                Assert.Equal(grpc.ToString(CultureInfo.InvariantCulture), Flag(argv, "--dapr-grpc-port"));
                Assert.Equal(internalGrpc.ToString(CultureInfo.InvariantCulture), Flag(argv, "--dapr-internal-grpc-port"));
                Assert.Equal(metrics.ToString(CultureInfo.InvariantCulture), Flag(argv, "--metrics-port"));
                Assert.Equal(resources, Flag(argv, "--resources-path"));
                Assert.True(File.Exists(Flag(argv, "--config")), "the --config file does not exist");
                Assert.Equal(string.Empty, Flag(argv, "--placement-host-address"));
                Assert.Contains("--log-as-json", argv);
                ports.AddRange([http, grpc, internalGrpc, metrics]);

                // The service runs in Dapr mode with this sidecar's endpoints, and (nodes) without a resolver URL.
                var environment = Environ(appPid);
                Assert.Equal($"http://127.0.0.1:{grpc}", environment.GetValueOrDefault("DAPR_GRPC_ENDPOINT"));
                Assert.Equal($"http://127.0.0.1:{http}", environment.GetValueOrDefault("DAPR_HTTP_ENDPOINT"));
                var commandLine = await File.ReadAllTextAsync($"/proc/{appPid}/cmdline");
                Assert.Contains("--Spegel:Transport=Dapr", commandLine, StringComparison.Ordinal);
                Assert.DoesNotContain("--Spegel:Resolver:Url", commandLine, StringComparison.Ordinal);
            }

            Assert.Equal(ports.Count, ports.Distinct().Count());

            // The components the sidecars load: components/redis, pointed at this redis-server, names and scopes kept.
            var state = LoadYaml(Path.Combine(resources, "statestore.yaml"));
            var pubsub = LoadYaml(Path.Combine(resources, "pubsub.yaml"));
            var redisHost = $"127.0.0.1:{redisUrl.Port}";
            AssertComponent(state, ContentTopics.DefaultStateStore, "state.redis", redisHost, ["resolver"]);
            AssertComponent(pubsub, ContentTopics.DefaultPubSub, "pubsub.redis", redisHost, ["indexer", "resolver"]);
            Assert.Equal("name", Metadata(state).GetValueOrDefault("keyPrefix"));
            Assert.Equal("Resiliency", Scalar(LoadYaml(Path.Combine(resources, "resiliency.yaml")), "kind"));

            var status = await ClusterTool.RunAsync(CommandTimeout, "cluster", "status", "--workdir", workdir);
            Assert.True(status.Succeeded, status.ToString());
            Assert.Contains("dapr: 5 of 5 daprd alive (resolver's: alive)", status.StdOut, StringComparison.Ordinal);

            var down = await ClusterTool.RunAsync(CommandTimeout, "cluster", "down", "--workdir", workdir);
            output.WriteLine(down.ToString());
            Assert.True(down.Succeeded, down.ToString());
            Assert.Contains("verified", down.StdOut, StringComparison.Ordinal);
            foreach (var pid in sidecars.Select(s => s.GetProperty("pid").GetInt32()).Append(redisPid))
            {
                Assert.False(ClusterTool.IsAlive(pid), $"pid {pid} still runs after down");
            }

            foreach (var port in ports)
            {
                Assert.False(await Ports.IsListeningAsync(port), $"port {port} still accepts connections after down");
            }

            Assert.Empty(ProcessesUsing(workdir));
            Assert.False(Directory.Exists(Path.Combine(workdir, "redis")));
            Assert.False(Directory.Exists(Path.Combine(workdir, "dapr")));
        }
        finally
        {
            if (File.Exists(Path.Combine(workdir, "cluster.json")))
            {
                await ClusterTool.RunAsync(CommandTimeout, "cluster", "down", "--workdir", workdir);
            }

            await RigDirectory.RemoveAsync(workdir);
        }
    }

    private static void AssertComponent(YamlMappingNode component, string name, string type, string redisHost, string[] scopes)
    {
        Assert.Equal("Component", Scalar(component, "kind"));
        Assert.Equal(name, Scalar((YamlMappingNode)component.Children["metadata"], "name"));
        var spec = (YamlMappingNode)component.Children["spec"];
        Assert.Equal(type, Scalar(spec, "type"));
        var metadata = Metadata(component);
        Assert.Equal(redisHost, metadata.GetValueOrDefault("redisHost"));
        Assert.False(metadata.ContainsKey("redisPassword"), $"{name} still asks for a password from a secret store");
        Assert.False(component.Children.ContainsKey("auth"), $"{name} still names a secret store");
        Assert.Equal(scopes, ((YamlSequenceNode)component.Children["scopes"]).Children.Select(s => ((YamlScalarNode)s).Value));
    }

    /// <summary>spec.metadata as name → value (entries without a plain value, such as secretKeyRef, map to null).</summary>
    private static Dictionary<string, string?> Metadata(YamlMappingNode component) =>
        ((YamlSequenceNode)((YamlMappingNode)component.Children["spec"]).Children["metadata"]).Children
            .Cast<YamlMappingNode>()
            .ToDictionary(e => Scalar(e, "name")!, e => e.Children.TryGetValue("value", out var v) ? ((YamlScalarNode)v).Value : null, StringComparer.Ordinal);

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(key, out var value) ? (value as YamlScalarNode)?.Value : null;

    private static YamlMappingNode LoadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return (YamlMappingNode)Assert.Single(stream.Documents).RootNode;
    }

    /// <summary>The value after <paramref name="flag"/>; fails when the flag is missing or given twice.</summary>
    private static string Flag(IReadOnlyList<string> argv, string flag)
    {
        var at = Enumerable.Range(0, argv.Count).Where(i => argv[i] == flag).ToList();
        Assert.True(at.Count == 1 && at[0] + 1 < argv.Count, $"{flag} appears {at.Count} times (with a value) in: {string.Join(' ', argv)}");
        return argv[at[0] + 1];
    }

    private static Dictionary<string, string> Environ(int pid) =>
        File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e.Split('=', 2))
            .Where(kv => kv.Length == 2)
            .GroupBy(kv => kv[0], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Last()[1], StringComparer.Ordinal);

    /// <summary>Live processes whose command line or working directory is below <paramref name="workdir"/>.</summary>
    private static List<string> ProcessesUsing(string workdir)
    {
        var found = new List<string>();
        foreach (var dir in Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), CultureInfo.InvariantCulture, out _)))
        {
            try
            {
                var pid = int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture);
                var commandLine = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                var cwd = new FileInfo(Path.Combine(dir, "cwd")).LinkTarget ?? string.Empty;
                if (ClusterTool.IsAlive(pid) && (commandLine.Contains(workdir, StringComparison.Ordinal) || cwd.StartsWith(workdir, StringComparison.Ordinal)))
                {
                    found.Add($"{pid} {commandLine} (cwd {cwd})");
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or not ours to read.
            }
        }

        return found;
    }

    /// <summary>One inline RESP command; the reply as read (a simple reply is returned without its CRLF).</summary>
    private static async Task<string> RedisAsync(int port, string command)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await client.ConnectAsync("127.0.0.1", port, timeout.Token);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"), timeout.Token);
        var buffer = new byte[1024];
        var read = await stream.ReadAsync(buffer, timeout.Token);
        var reply = Encoding.ASCII.GetString(buffer, 0, read);
        return reply.StartsWith('+') ? reply.TrimEnd() : reply;
    }

    [GeneratedRegex(@"^spegel: the cluster did not start: daprd for resolver \(app-id resolver\) exited with code 1 before it was ready; its log: (?<log>\S+) \(supervisor log: \S+\)$")]
    private static partial Regex DaprdFailed();

    [GeneratedRegex(@"redis-server pid (?<pid>\d+) on 127\.0\.0\.1:(?<port>\d+)")]
    private static partial Regex RedisStarted();

    [GeneratedRegex(@"supervisor (?<pid>\d+): starting")]
    private static partial Regex SupervisorStarted();
}
