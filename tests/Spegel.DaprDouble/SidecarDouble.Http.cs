using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Spegel.DaprDouble;

/// <summary>The sidecar's HTTP port: health, metadata and service invocation.</summary>
public sealed partial class SidecarDouble
{
    private const string InvokePrefix = "/v1.0/invoke/";

    // Hop-by-hop headers (RFC 9110 §7.6.1) and the sidecar's own headers are not forwarded.
    private static readonly HashSet<string> NotForwarded = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Host", ApiTokenHeader, AppIdHeader,
    };

    private void ConfigureHttp(WebApplicationBuilder builder, WebApplication? app)
    {
        if (app is null)
        {
            return;
        }

        app.Use(RequireApiTokenAsync);
        app.Use(InvokeByHeaderAsync);
        app.UseRouting();
        app.MapGet("/v1.0/healthz", Healthz);
        app.MapGet("/v1.0/healthz/outbound", () => Results.NoContent());
        app.MapGet("/v1.0/metadata", MetadataJson);
        app.MapPut("/v1.0/metadata/{key}", PutMetadataAsync);
        app.Map("/v1.0/invoke/{appId}/method/{**path}", InvokeByPathAsync);
        app.MapFallback("{**path}", (HttpContext context) => Error(
            context,
            HttpStatusCode.NotFound,
            "ERR_DIRECT_INVOKE",
            "failed getting app id either from the URL path or the header dapr-app-id"));
    }

    /// <summary>With <c>DAPR_API_TOKEN</c> set, every API call but the health probes needs the token.</summary>
    private async Task RequireApiTokenAsync(HttpContext context, RequestDelegate next)
    {
        if (Options.DaprApiToken is { } expected
            && !context.Request.Path.StartsWithSegments("/v1.0/healthz", StringComparison.OrdinalIgnoreCase)
            && !string.Equals(context.Request.Headers[ApiTokenHeader], expected, StringComparison.Ordinal))
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync("invalid api token", context.RequestAborted);
            return;
        }

        await next(context);
    }

    /// <summary>A request carrying <c>dapr-app-id</c> is an invocation of that app at the same path.</summary>
    private async Task InvokeByHeaderAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Headers[AppIdHeader].ToString() is { Length: > 0 } appId)
        {
            await InvokeAsync(context, appId, context.Request.Path.ToUriComponent());
            return;
        }

        await next(context);
    }

    private IResult Healthz() =>
        AppUrl is null || IsAppReady
            ? Results.NoContent()
            : Results.Json(
                new Dictionary<string, string> { ["errorCode"] = "ERR_HEALTH_NOT_READY", ["message"] = "dapr is not ready" },
                statusCode: StatusCodes.Status500InternalServerError);

    private async Task PutMetadataAsync(HttpContext context, string key)
    {
        using var reader = new StreamReader(context.Request.Body);
        SetExtendedMetadata(key, await reader.ReadToEndAsync(context.RequestAborted));
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>The shape of daprd's <c>GET /v1.0/metadata</c>.</summary>
    private IResult MetadataJson()
    {
        var metadata = MetadataResponse();
        var components = new JsonArray();
        foreach (var component in metadata.RegisteredComponents)
        {
            components.Add(new JsonObject
            {
                ["name"] = component.Name,
                ["type"] = component.Type,
                ["version"] = component.Version,
                ["capabilities"] = new JsonArray([.. component.Capabilities.Select(c => (JsonNode)c)]),
            });
        }

        var subscriptions = new JsonArray();
        foreach (var subscription in metadata.Subscriptions)
        {
            var meta = new JsonObject();
            foreach (var (key, value) in subscription.Metadata)
            {
                meta[key] = value;
            }

            subscriptions.Add(new JsonObject
            {
                ["pubsubname"] = subscription.PubsubName,
                ["topic"] = subscription.Topic,
                ["deadLetterTopic"] = subscription.DeadLetterTopic,
                ["metadata"] = meta,
                ["rules"] = new JsonArray([.. subscription.Rules.Rules.Select(r => (JsonNode)new JsonObject { ["match"] = r.Match, ["path"] = r.Path })]),
                ["type"] = "PROGRAMMATIC",
            });
        }

        var extended = new JsonObject();
        foreach (var (key, value) in metadata.ExtendedMetadata)
        {
            extended[key] = value;
        }

        var body = new JsonObject
        {
            ["id"] = metadata.Id,
            ["runtimeVersion"] = metadata.RuntimeVersion,
            ["enabledFeatures"] = new JsonArray(),
            ["actors"] = new JsonArray(),
            ["components"] = components,
            ["extended"] = extended,
            ["subscriptions"] = subscriptions,
            ["httpEndpoints"] = new JsonArray(),
        };
        if (metadata.AppConnectionProperties is { } app)
        {
            body["appConnectionProperties"] = new JsonObject
            {
                ["port"] = app.Port,
                ["protocol"] = app.Protocol,
                ["channelAddress"] = app.ChannelAddress,
                ["maxConcurrency"] = app.MaxConcurrency,
            };
        }

        return Results.Content(body.ToJsonString(), "application/json");
    }

    private Task InvokeByPathAsync(HttpContext context)
    {
        var appId = (string)context.GetRouteValue("appId")!;
        var raw = context.Request.Path.ToUriComponent();
        var methodAt = raw.IndexOf("/method", InvokePrefix.Length, StringComparison.Ordinal);
        var path = raw[(methodAt + "/method".Length)..];
        return InvokeAsync(context, appId, path.Length == 0 ? "/" : path);
    }

    /// <summary>Caller side of service invocation: resolves the app-id on the backplane and hands the call to that sidecar.</summary>
    private async Task InvokeAsync(HttpContext context, string appId, string path)
    {
        var target = _backplane.ResolveApp(appId);
        if (target is null)
        {
            Logger.LogWarning("Invoke from {Caller} to unknown app {AppId} {Method} {Path}", AppId, appId, context.Request.Method, path);
            await Error(context, HttpStatusCode.InternalServerError, "ERR_DIRECT_INVOKE", $"failed to invoke, id: {appId}, err: couldn't find service: {appId}");
            return;
        }

        await target.ForwardToAppAsync(context, AppId, path + context.Request.QueryString.ToUriComponent());
    }

    /// <summary>Callee side: streams the request to the app and its answer back, status and headers included.</summary>
    private async Task ForwardToAppAsync(HttpContext context, string callerAppId, string pathAndQuery)
    {
        using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), $"{AppUrl}{pathAndQuery}");
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true)
        {
            request.Content = new StreamContent(context.Request.Body);
        }

        foreach (var (name, values) in context.Request.Headers)
        {
            if (NotForwarded.Contains(name))
            {
                continue;
            }

            if (!request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }

        request.Headers.TryAddWithoutValidation("dapr-caller-app-id", callerAppId);
        request.Headers.TryAddWithoutValidation("dapr-callee-app-id", AppId);
        AddAppToken(request);

        HttpResponseMessage response;
        try
        {
            response = await _appClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        }
        catch (HttpRequestException e)
        {
            Logger.LogWarning(e, "Invoke from {Caller} to {AppId} {Method} {Path} failed: app unreachable", callerAppId, AppId, context.Request.Method, pathAndQuery);
            await Error(context, HttpStatusCode.InternalServerError, "ERR_DIRECT_INVOKE", $"fail to invoke, id: {AppId}, err: {e.Message}");
            return;
        }

        using (response)
        {
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
            {
                if (!NotForwarded.Contains(name))
                {
                    context.Response.Headers[name] = values.ToArray();
                }
            }

            await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
            await body.CopyToAsync(context.Response.Body, context.RequestAborted);
        }
    }

    private static Task Error(HttpContext context, HttpStatusCode status, string errorCode, string message)
    {
        context.Response.StatusCode = (int)status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(
            JsonSerializer.Serialize(new Dictionary<string, string> { ["errorCode"] = errorCode, ["message"] = message }),
            context.RequestAborted);
    }
}
