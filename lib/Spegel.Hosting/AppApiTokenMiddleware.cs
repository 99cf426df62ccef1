using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Spegel.Hosting;

/// <summary>
/// Dapr's app API token: when <c>APP_API_TOKEN</c> is set, the sidecar sends it as <c>dapr-api-token</c> on every
/// call into the app, and anything without it did not come through the sidecar. Health and metrics stay open for
/// the kubelet and the scraper.
/// </summary>
public sealed partial class AppApiTokenMiddleware(RequestDelegate next, ILogger<AppApiTokenMiddleware> logger, string token)
{
    public const string EnvironmentVariable = "APP_API_TOKEN";
    public const string HeaderName = "dapr-api-token";

    private static readonly string[] OpenPaths = ["/healthz", "/readyz", "/metrics"];
    private readonly byte[] expected = Encoding.UTF8.GetBytes(token);

    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (OpenPaths.Any(p => context.Request.Path.StartsWithSegments(p, StringComparison.Ordinal)) || Matches(context.Request.Headers[HeaderName]))
        {
            await next(context);
            return;
        }

        var path = context.Request.Path.Value ?? string.Empty;
        var ip = context.Connection.RemoteIpAddress?.ToString() ?? "-";
        LogRejected(path, ip);
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
    }

    private bool Matches(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), expected);

    [LoggerMessage(Level = LogLevel.Warning, Message = "request without a valid dapr-api-token refused {path} {ip}")]
    private partial void LogRejected(string path, string ip);
}

/// <summary>Adds <see cref="AppApiTokenMiddleware"/> when the environment sets the token.</summary>
public static class AppApiTokenApplicationBuilderExtensions
{
    public static IApplicationBuilder UseAppApiToken(this IApplicationBuilder app, string? token = null)
    {
        ArgumentNullException.ThrowIfNull(app);
        token ??= Environment.GetEnvironmentVariable(AppApiTokenMiddleware.EnvironmentVariable);
        return string.IsNullOrEmpty(token) ? app : app.UseMiddleware<AppApiTokenMiddleware>(token);
    }
}
