using Spegel.Cli;
using Spegel.TestRig;

namespace Spegel.Cli.Tests;

/// <summary>A real containerd pulls through what configure-containerd wrote: mirror first, upstream as fallback.</summary>
public sealed class ConfigureContainerdPullTests : IAsyncLifetime
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
}
