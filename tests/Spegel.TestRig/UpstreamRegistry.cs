using System.Diagnostics;
using System.Globalization;

namespace Spegel.TestRig;

/// <summary>
/// A real OCI registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1, filesystem storage under a
/// temp directory. Stop and restart keep the port and the stored images, so tests can take the upstream down.
/// </summary>
public sealed class UpstreamRegistry : RigDaemon
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private UpstreamRegistry(string directory, int port)
        : base(directory, Path.Combine(directory, "registry.log"), startTimeout: TimeSpan.FromSeconds(20), stopGrace: TimeSpan.FromSeconds(5))
    {
        Port = port;
        StorageDirectory = Path.Combine(directory, "data");
        ConfigPath = Path.Combine(directory, "config.yml");
    }

    public string StorageDirectory { get; }

    public string ConfigPath { get; }

    public int Port { get; }

    /// <summary><c>127.0.0.1:PORT</c>, the registry part of image references.</summary>
    public string Host => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary><c>http://127.0.0.1:PORT</c>.</summary>
    public Uri Url => new($"http://{Host}");

    public static async Task<UpstreamRegistry> StartAsync(CancellationToken ct = default)
    {
        _ = RequiredTools.DockerRegistry;
        var registry = new UpstreamRegistry(RigDirectory.Create("reg"), Ports.GetFreeTcpPort());
        try
        {
            registry.WriteConfig();
            await registry.LaunchAsync(ct).ConfigureAwait(false);
            return registry;
        }
        catch
        {
            await registry.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    protected override string DisplayName => "docker-registry";

    protected override string Endpoint => new Uri(Url, "/v2/").ToString();

    protected override (string Executable, IReadOnlyList<string> Arguments) Command() => (RequiredTools.DockerRegistry, ["serve", ConfigPath]);

    protected override async Task<bool> IsAnsweringAsync(CancellationToken ct)
    {
        try
        {
            using var response = await Http.GetAsync(new Uri(Url, "/v2/"), ct).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    private void WriteConfig()
    {
        System.IO.Directory.CreateDirectory(StorageDirectory);
        File.WriteAllText(ConfigPath, ConfigYaml(StorageDirectory, Host));
    }

    /// <summary>
    /// The docker-registry configuration the rig and the benchmarks run: quiet logs, filesystem storage under
    /// <paramref name="storageDirectory"/>, deletes on, no upload purging; with <paramref name="proxyRemoteUrl"/>,
    /// a pull-through cache of that registry.
    /// </summary>
    public static string ConfigYaml(string storageDirectory, string address, string? proxyRemoteUrl = null)
    {
        var yaml = $"""
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {storageDirectory}
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: {address}

            """;
        return proxyRemoteUrl is null ? yaml : yaml + $"""
            proxy:
              remoteurl: {proxyRemoteUrl}

            """;
    }
}
