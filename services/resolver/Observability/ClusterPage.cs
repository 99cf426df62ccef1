using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;
using Spegel.Resolver.Lookup;

namespace Spegel.Resolver.Observability;

/// <summary>
/// The cluster page: plain HTML, CSS and JavaScript embedded in this assembly (no CDN, no files on disk), and its
/// two JSON routes. Everything lives under <c>/ui/</c> with relative links, so the same page works when a registry
/// forwards <c>/ui/…</c> to the resolver.
/// </summary>
public static class ClusterPage
{
    public const string Prefix = "/ui";
    public const string OverviewPath = Prefix + "/api/cluster";
    public const string SearchPath = Prefix + "/api/image";

    private const string ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

    private static readonly FrozenDictionary<string, StaticFile> Files = Load();

    public static WebApplication MapClusterPage(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/", () => Results.Redirect(Prefix + "/"));
        app.MapGet(Prefix + "/{file?}", (string? file, HttpContext context) =>
            // Relative links need the trailing slash: /ui goes to /ui/ (routing matches both).
            string.IsNullOrEmpty(file) && !context.Request.Path.Value!.EndsWith('/')
                ? Results.Redirect(Prefix + "/")
                : Serve(string.IsNullOrEmpty(file) ? "index.html" : file, context));
        app.MapGet(OverviewPath, async (ClusterView view, HttpContext context) =>
        {
            context.Response.Headers.CacheControl = "no-store";
            return Results.Json(await view.OverviewAsync().WaitAsync(context.RequestAborted), ClusterJsonContext.Default.ClusterOverview);
        });
        app.MapGet(SearchPath, async (string? @ref, ClusterView view, HttpContext context) =>
        {
            context.Response.Headers.CacheControl = "no-store";
            var result = await view.SearchAsync(@ref, context.RequestAborted);
            return result is null
                ? Results.Json(new ErrorResponse(LookupKey.InvalidKeyMessage), ClusterJsonContext.Default.ErrorResponse, statusCode: StatusCodes.Status400BadRequest)
                : Results.Json(result, ClusterJsonContext.Default.ImageSearchResult);
        });
        return app;
    }

    private static IResult Serve(string name, HttpContext context)
    {
        if (!Files.TryGetValue(name, out var file))
        {
            return Results.NotFound();
        }

        var headers = context.Response.Headers;
        headers.CacheControl = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.ETag = file.ETag.ToString();
        if (context.Request.Headers.IfNoneMatch.ToString() == file.ETag.ToString())
        {
            return Results.StatusCode(StatusCodes.Status304NotModified);
        }

        return Results.Bytes(file.Content, file.ContentType);
    }

    private static FrozenDictionary<string, StaticFile> Load()
    {
        const string ResourcePrefix = "ClusterPage/";
        var assembly = typeof(ClusterPage).Assembly;
        var files = new Dictionary<string, StaticFile>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            var name = resource[ResourcePrefix.Length..];
            var etag = new EntityTagHeaderValue('"' + Convert.ToHexStringLower(SHA256.HashData(content))[..16] + '"');
            files[name] = new StaticFile(content, ContentTypeOf(name), etag);
        }

        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string ContentTypeOf(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };

    private sealed record StaticFile(byte[] Content, string ContentType, EntityTagHeaderValue ETag);
}
