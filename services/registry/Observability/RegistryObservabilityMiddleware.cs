using System.Diagnostics;
using Spegel.Core;
using Spegel.Core.Observability;
using Spegel.Hosting;

namespace Spegel.Registry.Observability;

/// <summary>
/// Counts every distribution API request once it is answered, from what the handler wrote into
/// <see cref="RequestLogFeature"/> (runs inside <see cref="RequestLogMiddleware"/>, which creates it): the request
/// counter, the mirror outcome, bytes to and from peers, time to first byte, and the recent-requests ring of
/// <c>/v1/status</c>. Bytes are the response's length, as in the request log line (0 for HEAD): nothing is
/// counted per chunk on the blob path.
/// </summary>
public sealed class RegistryObservabilityMiddleware(RequestDelegate next, RegistryMetrics metrics, RegistryActivity activity, TimeProvider time)
{
    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!context.Request.Path.StartsWithSegments("/v2", StringComparison.Ordinal))
        {
            // Not the distribution API: only name the handler, so the request log line says what it was.
            if (context.Features.Get<RequestLogFeature>() is { } log)
            {
                log.Handler = OtherHandler(context.Request.Path);
            }

            await next(context);
            return;
        }

        var started = Stopwatch.GetTimestamp();
        var firstByte = 0L;
        context.Response.OnStarting(() =>
        {
            firstByte = Stopwatch.GetTimestamp();
            return Task.CompletedTask;
        });
        try
        {
            await next(context);
        }
        finally
        {
            Record(context, started, firstByte);
        }
    }

    private void Record(HttpContext context, long started, long firstByte)
    {
        var request = context.Request;
        var status = context.Response.StatusCode;
        var feature = context.Features.Get<RequestLogFeature>();
        var handler = feature?.Handler ?? "unknown";
        metrics.Request(handler, request.Method, status);
        if (handler is not ("manifest" or "blob"))
        {
            return;
        }

        var bytes = HttpMethods.IsHead(request.Method) ? 0 : context.Response.ContentLength ?? 0;
        if (string.Equals(request.Headers[DistributionHandler.MirroredHeader], "true", StringComparison.OrdinalIgnoreCase))
        {
            if (RegistryActivity.IsHit(status))
            {
                metrics.ServedToPeers(bytes);
                activity.ServedToPeer(bytes);
            }

            return;
        }

        var source = feature?.Source ?? RegistryActivity.Outcomes.Local;
        var outcome = RegistryActivity.Outcome(source, status);
        var registry = RegistryOf(request, feature?.Key);
        metrics.MirrorOutcome(registry, outcome);
        switch (outcome)
        {
            case RegistryActivity.Outcomes.Peer:
                metrics.FetchedFromPeers(bytes);
                break;
            case RegistryActivity.Outcomes.Local:
                metrics.ServedLocally(bytes);
                break;
        }

        if (firstByte != 0)
        {
            metrics.FirstByte(Stopwatch.GetElapsedTime(started, firstByte), outcome);
        }

        var latency = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        activity.Record(new RecentRequest(
            time.GetUtcNow(), request.Method, handler, feature?.Key ?? request.Path.Value ?? string.Empty, registry,
            outcome == RegistryActivity.Outcomes.Peer ? source : outcome, status, Math.Round(latency, 3), bytes));
    }

    private static string OtherHandler(PathString path) =>
        path.StartsWithSegments(SpegelMetricsExtensions.MetricsPath, StringComparison.Ordinal) ? "metrics"
        : path.StartsWithSegments(RegistryObservabilityExtensions.StatusPath, StringComparison.Ordinal) ? "status"
        : path.StartsWithSegments(ClusterPageProxy.PathPrefix, StringComparison.Ordinal) ? "ui"
        : path.StartsWithSegments("/healthz", StringComparison.Ordinal) || path.StartsWithSegments("/readyz", StringComparison.Ordinal) ? "health"
        : "unknown";

    private static string RegistryOf(HttpRequest request, string? key)
    {
        var ns = request.Query["ns"];
        if (ns.Count == 1 && !string.IsNullOrEmpty(ns[0]))
        {
            return ns[0]!;
        }

        return Reference.TryParse(key, out var reference) ? reference.Registry : "unknown";
    }
}
