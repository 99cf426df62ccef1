using System.Diagnostics;
using System.Globalization;

namespace Spegel.TestRig;

/// <summary>
/// A real OCI registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1, filesystem storage under a
/// temp directory. Stop and restart keep the port and the stored images, so tests can take the upstream down.
/// </summary>
public sealed class UpstreamRegistry : IAsyncDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private BackgroundProcess? _process;
    private bool _disposed;

    private UpstreamRegistry(string directory, int port)
    {
        Directory = directory;
        Port = port;
        StorageDirectory = Path.Combine(directory, "data");
        ConfigPath = Path.Combine(directory, "config.yml");
        LogPath = Path.Combine(directory, "registry.log");
    }

    public string Directory { get; }

    public string StorageDirectory { get; }

    public string ConfigPath { get; }

    public string LogPath { get; }

    public int Port { get; }

    /// <summary><c>127.0.0.1:PORT</c>, the registry part of image references.</summary>
    public string Host => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary><c>http://127.0.0.1:PORT</c>.</summary>
    public Uri Url => new($"http://{Host}");

    public bool IsRunning => _process is { HasExited: false };

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

    /// <summary>Takes the registry down (connections to the port are refused until <see cref="RestartAsync"/>).</summary>
    public async Task StopAsync()
    {
        if (_process is not null)
        {
            await _process.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
    }

    /// <summary>Starts the registry again (stopping it first if it runs) on the same port with the same storage.</summary>
    public async Task RestartAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await StopAsync().ConfigureAwait(false);
        await LaunchAsync(ct).ConfigureAwait(false);
    }

    public string ReadLogTail(int maxChars = 4000) => _process?.ReadLogTail(maxChars) ?? string.Empty;

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_process is not null)
        {
            await _process.DisposeAsync().ConfigureAwait(false);
        }

        await RigDirectory.RemoveAsync(Directory).ConfigureAwait(false);
    }

    private void WriteConfig()
    {
        System.IO.Directory.CreateDirectory(StorageDirectory);
        File.WriteAllText(ConfigPath, $"""
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {StorageDirectory}
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: {Host}
            """);
    }

    private async Task LaunchAsync(CancellationToken ct)
    {
        if (_process is not null)
        {
            await _process.DisposeAsync().ConfigureAwait(false);
        }

        _process = BackgroundProcess.Start(RequiredTools.DockerRegistry, ["serve", ConfigPath], LogPath, Directory);
        var clock = Stopwatch.StartNew();
        var probe = new Uri(Url, "/v2/");
        while (true)
        {
            try
            {
                using var response = await Http.GetAsync(probe, ct).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (_process.HasExited)
            {
                throw new InvalidOperationException($"docker-registry exited with {_process.ExitCode} during start-up. Log tail ({LogPath}):\n{ReadLogTail()}");
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(20))
            {
                throw new TimeoutException($"docker-registry did not answer on {probe} within 20 s. Log tail:\n{ReadLogTail()}");
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }
    }
}
