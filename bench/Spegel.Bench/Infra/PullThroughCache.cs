using System.Globalization;
using Spegel.TestRig;

namespace Spegel.Bench.Infra;

/// <summary>
/// docker-registry (distribution 2.8) configured as a pull-through cache (<c>proxy: remoteurl</c>) of another registry:
/// what a cluster would run instead of a peer mirror. It stores every blob it forwards and serves it from its own
/// storage afterwards; manifests by tag are still checked with the remote on every request. Started, probed and
/// removed like the rig's own daemons (<see cref="RigDaemon"/>).
/// </summary>
public sealed class PullThroughCache : RigDaemon
{
    private readonly string configPath;

    private PullThroughCache(string directory, int port)
        : base(directory, Path.Combine(directory, "registry.log"), startTimeout: TimeSpan.FromSeconds(15), stopGrace: TimeSpan.FromSeconds(5))
    {
        Port = port;
        configPath = Path.Combine(directory, "config.yml");
    }

    public int Port { get; }

    public string Url => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}");

    protected override string DisplayName => "the pull-through docker-registry";

    protected override string Endpoint => Url;

    public static async Task<PullThroughCache> StartAsync(string remoteUrl, CancellationToken ct)
    {
        var cache = new PullThroughCache(RigDirectory.Create("ptc"), Ports.GetFreeTcpPort());
        try
        {
            await File.WriteAllTextAsync(
                cache.configPath,
                UpstreamRegistry.ConfigYaml(Path.Combine(cache.Directory, "data"), string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{cache.Port}"), remoteUrl),
                ct);
            await cache.LaunchAsync(ct);
            return cache;
        }
        catch
        {
            await cache.DisposeAsync();
            throw;
        }
    }

    protected override (string Executable, IReadOnlyList<string> Arguments) Command() => (RequiredTools.DockerRegistry, ["serve", configPath]);

    protected override Task<bool> IsAnsweringAsync(CancellationToken ct) => Ports.IsListeningAsync(Port, ct);
}
