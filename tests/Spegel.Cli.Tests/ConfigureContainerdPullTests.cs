using Spegel.Cli;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.Cli.Tests;

/// <summary>A real containerd pulls through what configure-containerd wrote: mirror first, upstream as fallback.</summary>
public sealed class ConfigureContainerdPullTests(ITestOutputHelper log) : IAsyncLifetime
{
    private readonly string root = Directory.CreateTempSubdirectory("spegel-hosts-pull-").FullName;
    private UpstreamRegistry upstream = null!;
    private ContainerdInstance containerd = null!;
    private TestImage image = null!;

    public async Task InitializeAsync()
    {
        upstream = await UpstreamRegistry.StartAsync();
        containerd = await ContainerdInstance.StartAsync();
        image = await new TestImages(upstream).SingleLayerAsync("configure/pull");
    }

    public async Task DisposeAsync()
    {
        await containerd.DisposeAsync();
        await upstream.DisposeAsync();
        Directory.Delete(root, recursive: true);
    }

    private string Configure(string mirrorTarget, string server)
    {
        // The upstream here speaks plain HTTP, so it comes in as existing configuration with its own server line.
        var configPath = Path.Combine(root, Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(Path.Combine(configPath, upstream.Host));
        File.WriteAllText(Path.Combine(configPath, upstream.Host, "hosts.toml"), $"server = \"{server}\"\n");
        ContainerdHostsConfig.Apply(new HostsConfigRequest(
            configPath, [upstream.Host], [new Uri(mirrorTarget)], ResolveTags: true, PrependExisting: true, TimeSpan.FromMilliseconds(200)));
        return configPath;
    }

    [Fact]
    public async Task Pull_MirrorUnreachable_FallsBackToUpstreamServer()
    {
        var hosts = Configure($"http://127.0.0.1:{Ports.GetFreeTcpPort()}", upstream.Url.ToString().TrimEnd('/'));

        var result = await containerd.PullAsync(image.Reference, hostsDir: hosts);

        Assert.True(result.Succeeded, result.StdErr);
        Assert.Contains(image.Reference, await containerd.ListImagesAsync());
    }

    [Fact]
    public async Task Pull_ServerUnreachable_IsServedByTheMirrorListedFirst()
    {
        var hosts = Configure(upstream.Url.ToString().TrimEnd('/'), $"http://127.0.0.1:{Ports.GetFreeTcpPort()}");

        var result = await containerd.PullAsync(image.Reference, hostsDir: hosts);

        Assert.True(result.Succeeded, result.StdErr);
        Assert.Contains(image.Reference, await containerd.ListImagesAsync());
    }

    /// <summary>
    /// Both reachable: the mirror and the upstream server are each a counting proxy in front of the same real
    /// registry, hosts.toml comes from the command itself, and containerd must take everything from the mirror.
    /// </summary>
    [Fact]
    public async Task Pull_MirrorAndServerBothReachable_TheMirrorServesEverythingAndTheServerSeesNothing()
    {
        await using var mirror = await CountingProxy.StartAsync(upstream.Url);
        await using var server = await CountingProxy.StartAsync(upstream.Url);
        var hosts = Path.Combine(root, "both-reachable");
        // The operator's existing configuration for this plain-HTTP registry: its server. Ours goes before it.
        Directory.CreateDirectory(Path.Combine(hosts, upstream.Host));
        File.WriteAllText(Path.Combine(hosts, upstream.Host, "hosts.toml"), $"server = \"{server.Url}\"\n");
        using var output = new StringWriter();
        using var error = new StringWriter();

        var code = ConfigureContainerdCommand.Run(
            ["--config-path", hosts, "--registry", upstream.Host, "--mirror-target", mirror.Url, "--prepend-existing"], output, error);
        Assert.True(code == 0, error.ToString());
        var written = File.ReadAllText(Path.Combine(hosts, upstream.Host, "hosts.toml"));
        // containerd tries the [host] tables in order and the top-level server last.
        Assert.Contains($"server = \"{server.Url}\"", written, StringComparison.Ordinal);
        Assert.Contains($"[host.\"{mirror.Url}\"]", written, StringComparison.Ordinal);

        var result = await containerd.PullAsync(image.Reference, hostsDir: hosts);

        Assert.True(result.Succeeded, result.StdErr);
        Assert.Contains(image.Reference, await containerd.ListImagesAsync());
        var served = mirror.Requests;
        Assert.Contains(served, r => r.StartsWith($"GET /v2/{image.Repository}/manifests/", StringComparison.Ordinal));
        foreach (var blob in image.NativeBlobs.Where(b => !Spegel.Core.MediaTypes.IsManifest(b.MediaType)))
        {
            Assert.Contains($"GET /v2/{image.Repository}/blobs/{blob.Digest}", served);
        }

        Assert.True(server.Requests.Count == 0, $"the upstream server was asked: {string.Join(", ", server.Requests)}");
        // The server was there all along: the same kind of request through it is answered and counted.
        using var http = new HttpClient();
        using var probe = await http.GetAsync(new Uri($"{server.Url}/v2/"));
        Assert.True(probe.IsSuccessStatusCode, $"{probe.StatusCode}");
        Assert.Single(server.Requests);
        log.WriteLine($"mirror served {served.Count} requests ({string.Join(", ", served)}); server 0 during the pull");
    }

    /// <summary>
    /// Every registry mirrored (_default) with --prepend-existing, and the operator's own directory for this registry,
    /// which containerd uses instead of _default: the mirror prepended there serves the whole pull and the operator's
    /// server sees nothing.
    /// </summary>
    [Fact]
    public async Task Pull_DefaultPrepend_RegistryWithItsOwnDirectory_IsServedByTheMirror()
    {
        await using var mirror = await CountingProxy.StartAsync(upstream.Url);
        await using var server = await CountingProxy.StartAsync(upstream.Url);
        var hosts = Path.Combine(root, "default-prepend");
        Directory.CreateDirectory(Path.Combine(hosts, upstream.Host));
        File.WriteAllText(Path.Combine(hosts, upstream.Host, "hosts.toml"), $"server = \"{server.Url}\"\n");
        using var output = new StringWriter();
        using var error = new StringWriter();

        var code = ConfigureContainerdCommand.Run(["--config-path", hosts, "--mirror-target", mirror.Url, "--prepend-existing"], output, error);
        Assert.True(code == 0, error.ToString());
        Assert.Contains($"extended {Path.Combine(hosts, upstream.Host, "hosts.toml")}", output.ToString(), StringComparison.Ordinal);

        var result = await containerd.PullAsync(image.Reference, hostsDir: hosts);

        Assert.True(result.Succeeded, result.StdErr);
        Assert.Contains(image.Reference, await containerd.ListImagesAsync());
        var served = mirror.Requests;
        Assert.Contains(served, r => r.StartsWith($"GET /v2/{image.Repository}/manifests/", StringComparison.Ordinal));
        Assert.True(server.Requests.Count == 0, $"the operator's server was asked: {string.Join(", ", server.Requests)}");
        log.WriteLine($"mirror served {served.Count} requests; the operator's server 0");
    }
}
