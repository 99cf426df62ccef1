using System.Diagnostics;
using System.Globalization;

namespace Spegel.Registry;

/// <summary>What a request was, filled in by the handler, logged once when the response is done.</summary>
public sealed class RequestLogFeature
{
    public string Handler { get; set; } = "unknown";

    /// <summary><c>local</c>, a peer's name, or <c>miss</c>.</summary>
    public string Source { get; set; } = "local";

    public string? Key { get; set; }
}

/// <summary>One JSON line per request, the fields operators look for: status, method, latency, ip, handler, source, bytes.</summary>
public sealed partial class RequestLogMiddleware(RequestDelegate next, ILogger<RequestLogMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var feature = new RequestLogFeature();
        context.Features.Set(feature);
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            if (logger.IsEnabled(LogLevel.Information))
            {
                Log(context, feature, started);
            }
        }
    }

    private void Log(HttpContext context, RequestLogFeature feature, long started)
    {
        var latency = Stopwatch.GetElapsedTime(started).TotalMilliseconds.ToString("0.######", CultureInfo.InvariantCulture) + "ms";
        var bytes = HttpMethods.IsHead(context.Request.Method) ? 0 : context.Response.ContentLength ?? 0;
        var ip = context.Connection.RemoteIpAddress?.ToString() ?? "-";
        var path = context.Request.Path.Value ?? string.Empty;
        var aborted = context.RequestAborted.IsCancellationRequested;
        LogRequest(context.Response.StatusCode, context.Request.Method, latency, ip, feature.Handler, feature.Source, bytes, path, aborted);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "request {status} {method} {latency} {ip} {handler} {source} {bytes} {path} {aborted}")]
    private partial void LogRequest(int status, string method, string latency, string ip, string handler, string source, long bytes, string path, bool aborted);
}
