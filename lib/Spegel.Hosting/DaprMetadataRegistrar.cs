using Dapr.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Spegel.Hosting;

/// <summary>
/// In Dapr mode, tells the sidecar who this app is (extended metadata <c>spegel.node</c>, <c>spegel.role</c>,
/// <c>spegel.version</c>), so <c>GET /v1.0/metadata</c> and the dapr tooling show it. The sidecar may come up after
/// the app: this retries in the background with capped backoff until the sidecar answers, never delaying start.
/// </summary>
public sealed partial class DaprMetadataRegistrar(
    string role,
    IConfiguration configuration,
    IOptions<SpegelOptions> spegel,
    IOptions<NodeOptions> node,
    TimeProvider time,
    ILogger<DaprMetadataRegistrar> logger) : BackgroundService
{
    public const string NodeKey = "spegel.node";
    public const string RoleKey = "spegel.role";
    public const string VersionKey = "spegel.version";

    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private volatile bool registered;

    /// <summary>True once the sidecar took every key.</summary>
    public bool Registered => registered;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (spegel.Value.TransportKind != Transport.Dapr)
        {
            return;
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [NodeKey] = node.Value.Name,
            [RoleKey] = role,
            [VersionKey] = SpegelDefaultsExtensions.Version,
        };
        using var client = CreateClient();
        var backoff = TimeSpan.FromMilliseconds(100);
        for (var attempt = 1; !stoppingToken.IsCancellationRequested; attempt++)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                foreach (var (key, value) in metadata)
                {
                    await client.SetMetadataAsync(key, value, timeout.Token);
                }

                registered = true;
                LogRegistered(metadata[NodeKey], role, metadata[VersionKey], attempt);
                return;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                if (attempt == 1 || attempt % 20 == 0)
                {
                    LogNotYet(attempt, ex.Message);
                }
            }

            try
            {
                await Task.Delay(backoff, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    /// <summary>The sidecar's endpoints from configuration (environment variables included), as Dapr documents them.</summary>
    private DaprClient CreateClient()
    {
        var builder = new DaprClientBuilder();
        var grpc = configuration["DAPR_GRPC_ENDPOINT"]
            ?? (configuration["DAPR_GRPC_PORT"] is { Length: > 0 } grpcPort ? $"http://127.0.0.1:{grpcPort}" : null);
        var http = configuration["DAPR_HTTP_ENDPOINT"]
            ?? (configuration["DAPR_HTTP_PORT"] is { Length: > 0 } httpPort ? $"http://127.0.0.1:{httpPort}" : null);
        if (grpc is not null)
        {
            builder.UseGrpcEndpoint(grpc);
        }

        if (http is not null)
        {
            builder.UseHttpEndpoint(http);
        }

        if (configuration["DAPR_API_TOKEN"] is { Length: > 0 } token)
        {
            builder.UseDaprApiToken(token);
        }

        return builder.Build();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "dapr metadata registered {node} {role} {version} {attempts}")]
    private partial void LogRegistered(string node, string role, string version, int attempts);

    [LoggerMessage(Level = LogLevel.Warning, Message = "dapr sidecar not answering yet, metadata registration retrying {attempt} {error}")]
    private partial void LogNotYet(int attempt, string error);
}

/// <summary>Registers <see cref="DaprMetadataRegistrar"/>.</summary>
public static class DaprMetadataExtensions
{
    public static IServiceCollection AddDaprMetadataRegistration(this IServiceCollection services, string role)
    {
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<DaprMetadataRegistrar>(sp, role));
        services.AddHostedService(sp => sp.GetRequiredService<DaprMetadataRegistrar>());
        return services;
    }
}
