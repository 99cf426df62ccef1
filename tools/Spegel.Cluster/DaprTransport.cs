using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Spegel.TestRig;
using YamlDotNet.RepresentationModel;

namespace Spegel.Cluster;

/// <summary>
/// The cluster's one <c>redis-server</c> (<c>--transport dapr</c>): the backend of the state store and pub/sub
/// components. Own port on 127.0.0.1, own folder under the workdir, no persistence (<c>--save ""</c>,
/// <c>--appendonly no</c>): the resolver's map is rebuilt from the indexers' snapshots, so nothing must outlive
/// the cluster. Started in its own process group, so stopping it leaves nothing behind.
/// </summary>
internal sealed class LocalRedis : IAsyncDisposable
{
    private readonly BackgroundProcess _process;

    private LocalRedis(BackgroundProcess process, int port, string directory)
    {
        _process = process;
        Port = port;
        Directory = directory;
    }

    public int Port { get; }

    public string Directory { get; }

    public int Pid => _process.Id;

    public string LogPath => _process.LogPath;

    /// <summary>What the components' <c>redisHost</c> says.</summary>
    public string Host => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    public string Url => "redis://" + Host;

    public static async Task<LocalRedis> StartAsync(string directory, string logPath, TimeSpan timeout, CancellationToken ct)
    {
        var server = RequiredTools.Find("redis-server", "redis-server");
        System.IO.Directory.CreateDirectory(directory);
        var port = Ports.GetFreeTcpPort();
        string[] args =
        [
            "--port", port.ToString(CultureInfo.InvariantCulture),
            "--bind", "127.0.0.1",
            "--dir", directory,
            "--save", string.Empty,
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", string.Empty,
        ];
        var redis = new LocalRedis(BackgroundProcess.Start(server, args, logPath), port, directory);
        try
        {
            await redis.WaitForPongAsync(timeout, ct);
            return redis;
        }
        catch
        {
            await redis.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _process.StopAsync(TimeSpan.FromSeconds(5));
        await _process.DisposeAsync();
    }

    /// <summary>A RESP <c>PING</c> on a fresh connection: true when the answer is <c>+PONG</c>.</summary>
    public static async Task<bool> PingAsync(int port, CancellationToken ct)
    {
        using var client = new TcpClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await client.ConnectAsync("127.0.0.1", port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), timeout.Token);
            var buffer = new byte[64];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task WaitForPongAsync(TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (!await PingAsync(Port, ct))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited with code {_process.ExitCode} before it answered PING on {Host}; its log: {LogPath}");
            }

            if (clock.Elapsed > timeout)
            {
                throw new InvalidOperationException($"redis-server did not answer PING on {Host} within {timeout.TotalSeconds:0} s; its log: {LogPath}");
            }

            await Task.Delay(50, ct);
        }
    }
}

/// <summary>
/// The Dapr resources the sidecars load, rendered from the repository's <c>components/</c> for one machine:
/// <c>components/redis</c> (state store <c>spegel-state</c>, pub/sub <c>spegel-pubsub</c>) with <c>redisHost</c>
/// pointing at the cluster's redis-server and without the password's Kubernetes secret reference (the local
/// server has no password and there is no Kubernetes secret store), <c>components/common/resiliency.yaml</c> as it
/// is, and <c>components/common/configuration.yaml</c> as the file passed with <c>--config</c>. Names, types,
/// metadata and scopes stay as components/ declares them, since the services ask for those names.
/// </summary>
internal static class DaprComponents
{
    public const string StateStoreFile = "statestore.yaml";
    public const string PubSubFile = "pubsub.yaml";
    public const string ResiliencyFile = "resiliency.yaml";
    public const string ConfigurationFile = "configuration.yaml";

    /// <summary>Writes <c>DIR/resources/*.yaml</c> and <c>DIR/configuration.yaml</c>; returns both paths.</summary>
    public static (string ResourcesPath, string ConfigPath) Render(string componentsRoot, string directory, string redisHost)
    {
        var resources = Path.Combine(directory, "resources");
        Directory.CreateDirectory(resources);
        foreach (var file in new[] { StateStoreFile, PubSubFile })
        {
            var document = Load(Path.Combine(componentsRoot, "redis", file));
            PointAtLocalRedis(document, redisHost, file);
            Save(document, Path.Combine(resources, file), $"components/redis/{file} for redis-server at {redisHost} (no password, no secret store)");
        }

        Save(Load(Path.Combine(componentsRoot, "common", ResiliencyFile)), Path.Combine(resources, ResiliencyFile), $"components/common/{ResiliencyFile}");
        var config = Path.Combine(directory, ConfigurationFile);
        Save(Load(Path.Combine(componentsRoot, "common", ConfigurationFile)), config, $"components/common/{ConfigurationFile}");
        return (resources, config);
    }

    private static YamlMappingNode Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{path} is missing: --transport dapr renders its components from the repository's components/ folder");
        }

        var stream = new YamlStream();
        using (var reader = new StreamReader(path))
        {
            stream.Load(reader);
        }

        return stream.Documents is [{ RootNode: YamlMappingNode root }]
            ? root
            : throw new InvalidOperationException($"{path} is not one YAML mapping document");
    }

    private static void PointAtLocalRedis(YamlMappingNode document, string redisHost, string file)
    {
        var spec = document.Children.TryGetValue(new YamlScalarNode("spec"), out var s) && s is YamlMappingNode m ? m : null;
        var metadata = spec is not null && spec.Children.TryGetValue(new YamlScalarNode("metadata"), out var md) && md is YamlSequenceNode seq ? seq : null;
        if (metadata is null)
        {
            throw new InvalidOperationException($"components/redis/{file} has no spec.metadata list");
        }

        var hosts = 0;
        foreach (var entry in metadata.Children.OfType<YamlMappingNode>().ToList())
        {
            var name = entry.Children.TryGetValue(new YamlScalarNode("name"), out var n) ? (n as YamlScalarNode)?.Value : null;
            if (name == "redisHost")
            {
                entry.Children[new YamlScalarNode("value")] = new YamlScalarNode(redisHost);
                hosts++;
            }
            else if (name == "redisPassword")
            {
                metadata.Children.Remove(entry);
            }
        }

        if (hosts != 1)
        {
            throw new InvalidOperationException($"components/redis/{file} has {hosts} redisHost entries; expected one");
        }

        document.Children.Remove(new YamlScalarNode("auth"));
    }

    private static void Save(YamlMappingNode document, string path, string source)
    {
        using var yaml = new StringWriter(CultureInfo.InvariantCulture);
        new YamlStream(new YamlDocument(document)).Save(yaml, assignAnchors: false);

        // YamlDotNet ends the document with "...": valid, but not how a component file is written.
        var text = yaml.ToString().TrimEnd();
        text = text.EndsWith("\n...", StringComparison.Ordinal) ? text[..^4] : text;
        File.WriteAllText(path, $"# Rendered by ./spegel cluster up --transport dapr from {source}.\n{text}\n");
    }
}

/// <summary>
/// One <c>daprd</c> next to one service, in self-hosted mode: its ports are picked first (the service is started
/// with them in <see cref="Environment"/>), it is started once the service answers, with <c>--app-port</c> set to
/// the service's port, and it is ready when its <c>GET /v1.0/healthz</c> answers 2xx (daprd does so once its app
/// channel is up). Own process group; the log is <c>logs/&lt;name&gt;-daprd.log</c>.
/// </summary>
internal sealed class DaprSidecar : IAsyncDisposable
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };

    private readonly string _daprd;
    private readonly string _resourcesPath;
    private readonly string _configPath;
    private BackgroundProcess? _process;

    public DaprSidecar(string daprd, string name, string appId, string resourcesPath, string configPath, string logDirectory)
    {
        _daprd = daprd;
        _resourcesPath = resourcesPath;
        _configPath = configPath;
        Name = name;
        AppId = appId;
        LogPath = Path.Combine(logDirectory, name + "-daprd.log");
        HttpPort = Ports.GetFreeTcpPort();
        GrpcPort = Ports.GetFreeTcpPort();
        InternalGrpcPort = Ports.GetFreeTcpPort();
        MetricsPort = Ports.GetFreeTcpPort();
    }

    /// <summary><c>resolver</c>, <c>node-1-registry</c>…</summary>
    public string Name { get; }

    public string AppId { get; }

    public int AppPort { get; private set; }

    public int HttpPort { get; }

    public int GrpcPort { get; }

    /// <summary>daprd-to-daprd service invocation; set per sidecar, as several run on one machine.</summary>
    public int InternalGrpcPort { get; }

    public int MetricsPort { get; }

    public string LogPath { get; }

    public int Pid => _process?.Id ?? 0;

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>The sidecar's endpoints as the Dapr SDK reads them (both forms: endpoint and port).</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["DAPR_HTTP_ENDPOINT"] = Loopback(HttpPort),
        ["DAPR_GRPC_ENDPOINT"] = Loopback(GrpcPort),
        ["DAPR_HTTP_PORT"] = HttpPort.ToString(CultureInfo.InvariantCulture),
        ["DAPR_GRPC_PORT"] = GrpcPort.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>daprd's command line in self-hosted mode: API on loopback only, no placement (the services use no actors).</summary>
    public IReadOnlyList<string> Arguments =>
    [
        "--app-id", AppId,
        "--app-port", AppPort.ToString(CultureInfo.InvariantCulture),
        "--app-protocol", "http",
        "--dapr-listen-addresses", "127.0.0.1",
        "--dapr-http-port", HttpPort.ToString(CultureInfo.InvariantCulture),
        "--dapr-grpc-port", GrpcPort.ToString(CultureInfo.InvariantCulture),
        "--dapr-internal-grpc-port", InternalGrpcPort.ToString(CultureInfo.InvariantCulture),
        "--metrics-port", MetricsPort.ToString(CultureInfo.InvariantCulture),
        "--resources-path", _resourcesPath,
        "--config", _configPath,
        "--placement-host-address", string.Empty,
        "--log-as-json",
    ];

    public SidecarInfo Describe() => new(Name, AppId, AppPort, Pid, HttpPort, GrpcPort, InternalGrpcPort, MetricsPort, LogPath);

    /// <summary>Starts daprd for the app listening on <paramref name="appPort"/> and waits until it is ready.</summary>
    public async Task StartAsync(int appPort, TimeSpan timeout, CancellationToken ct)
    {
        AppPort = appPort;
        _process = BackgroundProcess.Start(_daprd, Arguments, LogPath);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"daprd for {Name} (app-id {AppId}) exited with code {_process.ExitCode} before it was ready; its log: {LogPath}");
            }

            if (await HealthyAsync(ct))
            {
                return;
            }

            if (clock.Elapsed > timeout)
            {
                throw new InvalidOperationException($"daprd for {Name} (app-id {AppId}) did not answer GET /v1.0/healthz on port {HttpPort} within {timeout.TotalSeconds:0} s; its log: {LogPath}");
            }

            await Task.Delay(100, ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.StopAsync(TimeSpan.FromSeconds(5));
            await _process.DisposeAsync();
        }
    }

    private static string Loopback(int port) => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}");

    private async Task<bool> HealthyAsync(CancellationToken ct)
    {
        try
        {
            using var response = await Http.GetAsync(new Uri(Loopback(HttpPort) + "/v1.0/healthz"), ct);
            return response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }
}
