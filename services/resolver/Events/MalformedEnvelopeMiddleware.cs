using System.Text.Json;
using Spegel.Core.Events;

namespace Spegel.Resolver.Events;

/// <summary>Turns a subscription request whose CloudEvent envelope cannot be parsed into Dapr's DROP answer and a log line.</summary>
public sealed partial class MalformedEnvelopeMiddleware(RequestDelegate next, ILogger<MalformedEnvelopeMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            await next(context);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException or NotSupportedException
                                   && context.Request.Path.Equals(ContentTopics.SubscriptionRoute, StringComparison.Ordinal) && !context.Response.HasStarted)
        {
            LogMalformed(ex.Message);
            context.Response.Clear();
            context.Response.StatusCode = StatusCodes.Status200OK;
            await context.Response.WriteAsJsonAsync(SubscriptionResponse.Drop, context.RequestAborted);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "event dropped: the CloudEvent envelope is not valid JSON {error}")]
    private partial void LogMalformed(string error);
}
