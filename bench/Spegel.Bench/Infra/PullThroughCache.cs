using System.Globalization;
using Spegel.TestRig;

namespace Spegel.Bench.Infra;

/// <summary>
/// docker-registry (distribution 2.8) configured as a pull-through cache (<c>proxy: remoteurl</c>) of another registry:
/// what a cluster would run instead of a peer mirror. It stores every blob it forwards and serves it from its own
/// storage afterwards; manifests by tag are still checked with the remote on every request.
/// </summary>
public sealed class PullThroughCache : IAsyncDisposable
{
    private readonly BackgroundProcess process;
    private readonly string directory;

    private PullThroughCache(BackgroundProcess process, string directory, int port)
    {
        this.process = process;
        this.directory = directory;
        Port = port;
    }

    public int Port { get; }

    public string Url => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}");

    public int Pid => process.Id;

    public static async Task<PullThroughCache> StartAsync(string remoteUrl, CancellationToken ct)
    {
        var dir = RigDirectory.Create("ptc");
        var port = Ports.GetFreeTcpPort();
        var config = Path.Combine(dir, "config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {Path.Combine(dir, "data")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}
            proxy:
              remoteurl: {remoteUrl}
            """, ct);
        var process = BackgroundProcess.Start(RequiredTools.DockerRegistry, ["serve", config], Path.Combine(dir, "registry.log"), dir);
        var cache = new PullThroughCache(process, dir, port);
        try
        {
            await Poll.WaitUntilAsync(
                async token =>
                {
                    if (process.HasExited)
                    {
                        throw new InvalidOperationException($"the pull-through docker-registry exited with {process.ExitCode}: {process.ReadLogTail()}");
                    }

                    return await Ports.IsListeningAsync(port, token);
                },
                TimeSpan.FromSeconds(15),
                "the pull-through docker-registry to listen",
                TimeSpan.FromMilliseconds(20),
                ct);
            return cache;
        }
        catch
        {
            await cache.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await process.StopAsync(TimeSpan.FromSeconds(5));
        await process.DisposeAsync();
        await RigDirectory.RemoveAsync(directory);
    }
}
