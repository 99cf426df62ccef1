using Spegel.Core;

namespace Spegel.Registry.Mirror;

/// <summary>
/// Runs the mirror's lookup path once at start (a lookup nobody answers) so that the first real pull does not pay
/// for JIT compilation and the first connection inside its <see cref="MirrorOptions.MirrorResolveTimeout"/>: on a
/// busy node that cold start took 0.8–1.5 s and turned the first mirrored request into a 404.
/// </summary>
public sealed partial class MirrorWarmup(IPeerResolver resolver, IHostApplicationLifetime lifetime, ILogger<MirrorWarmup> logger) : IHostedService
{
    private static readonly string WarmupKey = ContentKey.ForDigest(Digest.ComputeSha256([]));

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Always: in Standalone without a resolver URL the lookup fails at once, which still compiles the path.
        lifetime.ApplicationStarted.Register(() => _ = WarmAsync(lifetime.ApplicationStopping));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task WarmAsync(CancellationToken cancellationToken)
    {
        try
        {
            await resolver.LookupAsync(WarmupKey, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The resolver may not be up yet; the point was to compile the path, which happened either way.
            LogWarmupMiss(ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "mirror warm-up lookup did not answer")]
    private partial void LogWarmupMiss(Exception exception);
}
