using Spegel.Registry.Mirror;

namespace Spegel.Registry.Observability;

/// <summary>
/// Makes the resolver's cluster page reachable through any node's registry: <c>GET /ui/…</c> is forwarded to the
/// resolver's <c>/ui/…</c> with the registry's resolver client (the resolver's URL in Standalone, the sidecar's
/// invoke-by-app-id in Dapr), so an operator needs nothing but a node's address.
/// </summary>
public sealed class ClusterPageProxy(IHttpClientFactory clients)
{
    public const string PathPrefix = "/ui";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly string[] CopiedHeaders = ["Content-Type", "Cache-Control", "ETag", "Last-Modified"];

    public async Task ForwardAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Request.Path.Value is PathPrefix)
        {
            // The page's links are relative: it must be loaded as /ui/ (the resolver's client would follow its redirect).
            context.Response.Redirect(PathPrefix + "/");
            return;
        }

        var client = clients.CreateClient(HttpPeerResolver.ClientName);
        if (client.BaseAddress is null)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            await context.Response.WriteAsync("no resolver is configured (Spegel:Resolver:Url)", context.RequestAborted);
            return;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        timeout.CancelAfter(Timeout);
        var target = new Uri(client.BaseAddress, context.Request.Path.Value!.TrimStart('/') + context.Request.QueryString.Value);
        using var request = new HttpRequestMessage(HttpMethods.IsHead(context.Request.Method) ? HttpMethod.Head : HttpMethod.Get, target);
        if (context.Request.Headers.IfNoneMatch.Count > 0)
        {
            request.Headers.TryAddWithoutValidation("If-None-Match", context.Request.Headers.IfNoneMatch.ToArray());
        }

        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !context.RequestAborted.IsCancellationRequested)
        {
            context.Response.StatusCode = StatusCodes.Status502BadGateway;
            await context.Response.WriteAsync($"the resolver did not answer: {ex.Message}", context.RequestAborted);
            return;
        }

        using (response)
        {
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var name in CopiedHeaders)
            {
                if (response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values))
                {
                    context.Response.Headers[name] = values.ToArray();
                }
            }

            if (response.Headers.Location is { } location)
            {
                context.Response.Headers.Location = location.IsAbsoluteUri ? location.PathAndQuery : location.ToString();
            }

            await response.Content.CopyToAsync(context.Response.Body, timeout.Token);
        }
    }
}
