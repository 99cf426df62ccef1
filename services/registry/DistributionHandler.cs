using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Spegel.Core;
using Spegel.Core.Content;
using Spegel.Registry.Mirror;

namespace Spegel.Registry;

/// <summary>
/// The OCI distribution read API over the node's own content: <c>/v2/</c>, manifests by tag or digest, blobs by
/// digest with ranges. Client mistakes are 4xx with the spec's error body; an unreachable containerd is a fast 503.
/// </summary>
public sealed partial class DistributionHandler(ILocalContent content, MirrorService mirror, PrivateContentPolicy privacy, IOptions<RegistryOptions> options, IOptions<PeerAuthOptions> peerAuth, ILogger<DistributionHandler> logger)
{
    public const string MirroredHeader = "X-Spegel-Mirrored";
    public const string DistributionApiVersionHeader = "Docker-Distribution-API-Version";
    public const string ContentDigestHeader = "Docker-Content-Digest";

    private const string PrivateToPeers = "private content is not served to peers (Spegel:PrivateRepositories)";

    private readonly RegistryOptions options = options.Value;

    public async Task<IResult> HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Request;
        var log = context.Features.Get<RequestLogFeature>() ?? new RequestLogFeature();
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            log.Handler = "unsupported";
            return OciErrors.Result(StatusCodes.Status405MethodNotAllowed, OciErrors.Unsupported, "this mirror is read-only: only GET and HEAD are served");
        }

        var ns = request.Query["ns"];
        if (ns.Count > 1)
        {
            log.Handler = "invalid";
            return OciErrors.Result(StatusCodes.Status400BadRequest, OciErrors.NameInvalid, "the ns query parameter must be given at most once");
        }

        if (!DistributionPath.TryParse(request.Path.Value, ns.Count == 1 ? ns[0] : null, out var path, out var error))
        {
            log.Handler = error == DistributionPathError.NotFound ? "unknown" : "invalid";
            return PathError(error);
        }

        if (path.Kind == DistributionPathKind.Root)
        {
            log.Handler = "v2";
            context.Response.Headers[DistributionApiVersionHeader] = "registry/2.0";
            return Results.Json(new Dictionary<string, string>(), OciErrorJsonContext.Default.DictionaryStringString);
        }

        log.Handler = path.Kind == DistributionPathKind.Manifest ? "manifest" : "blob";
        log.Key = path.Digest?.ToString() ?? path.Reference?.ToString();
        if (Refused(path) is { } refusal)
        {
            log.Source = "filtered";
            return NotFound(path, refusal);
        }

        // A peer asking (X-Spegel-Mirrored) is answered from local content only, so requests never loop.
        var fromPeer = string.Equals(request.Headers[MirroredHeader], "true", StringComparison.OrdinalIgnoreCase);
        if (fromPeer && !peerAuth.Value.Accepts(request.Headers.Authorization))
        {
            log.Source = "unauthorized";
            var ip = context.Connection.RemoteIpAddress?.ToString() ?? "-";
            LogPeerRefused(request.Path.Value ?? string.Empty, ip);
            return OciErrors.Result(StatusCodes.Status401Unauthorized, OciErrors.Unauthorized, "peer requests need the shared peer token (Spegel:PeerToken)");
        }

        // Private repositories stay off the peer path both ways: not served to peers, not fetched from them.
        if (path.Reference is { } named && privacy.IsPrivate(named) && (fromPeer || path.Digest is null || !await IsHeldAsync(path, context.RequestAborted)))
        {
            log.Source = "private";
            return NotFound(path, "private repository: kept off the peer path (Spegel:PrivateRepositories)");
        }

        try
        {
            // Blobs check privacy with the info they read anyway; manifests need one extra read, for peers only.
            if (fromPeer && privacy.IsEnabled && path.Kind == DistributionPathKind.Manifest && path.Digest is { } digest
                && await content.GetInfoAsync(digest, context.RequestAborted) is { IsPrivate: true })
            {
                log.Source = "private";
                return NotFound(path, PrivateToPeers);
            }

            var local = path.Kind == DistributionPathKind.Manifest
                ? await ServeManifestAsync(context, path)
                : await ServeBlobAsync(context, path, fromPeer, log);
            if (local is not null)
            {
                return local;
            }
        }
        catch (ContentStoreUnavailableException ex)
        {
            LogContentStoreUnavailable(request.Path.Value ?? string.Empty, ex.Message);
            if (fromPeer)
            {
                log.Source = "unavailable";
                return OciErrors.Result(StatusCodes.Status503ServiceUnavailable, OciErrors.Unavailable, "the node's content store is not reachable", ex.Message);
            }
        }

        if (fromPeer)
        {
            return NotFound(path, "not held on this node");
        }

        return await mirror.ServeAsync(context, path, log);
    }

    private async Task<bool> IsHeldAsync(DistributionPath path, CancellationToken cancellationToken) =>
        path.Digest is { } digest && await content.GetInfoAsync(digest, cancellationToken) is not null;

    private string? Refused(DistributionPath path)
    {
        if (path.Registry is { } registry && !options.IsMirrored(registry))
        {
            return $"registry {registry} is not mirrored";
        }

        if (path.Tag is not null && !options.ResolveTags)
        {
            return "tags are not resolved by this mirror";
        }

        return path.Reference is { } reference && options.IsFiltered(reference.ToString())
            ? $"{reference} is excluded by Spegel:RegistryFilters"
            : null;
    }

    private async Task<IResult?> ServeManifestAsync(HttpContext context, DistributionPath path)
    {
        var ct = context.RequestAborted;
        string? mediaTypeHint = null;
        Digest digest;
        if (path.Digest is { } requested)
        {
            digest = requested;
        }
        else
        {
            var target = await content.ResolveTagAsync(path.Reference!, ct);
            if (target is null)
            {
                return null;
            }

            digest = target.Digest;
            mediaTypeHint = target.MediaType;
        }

        byte[]? bytes;
        try
        {
            bytes = await content.ReadAllAsync(digest, options.MaxManifestBytes, ct);
        }
        catch (InvalidDataException)
        {
            return NotFound(path, $"larger than {options.MaxManifestBytes} bytes: not a manifest this mirror serves");
        }

        if (bytes is null)
        {
            return null;
        }

        var parsed = ManifestParser.Parse(mediaTypeHint, bytes);
        if (!parsed.IsSuccess || !MediaTypes.IsManifest(parsed.MediaType))
        {
            // A config or layer asked for on the manifests endpoint is unknown as a manifest.
            return NotFound(path, "the digest is not a manifest or index");
        }

        var headers = context.Response.Headers;
        headers[ContentDigestHeader] = digest.ToString();
        return new ManifestResult(bytes, parsed.MediaType!);
    }

    private async Task<IResult?> ServeBlobAsync(HttpContext context, DistributionPath path, bool fromPeer, RequestLogFeature log)
    {
        var digest = path.Digest!.Value;
        var info = await content.GetInfoAsync(digest, context.RequestAborted);
        if (info is null)
        {
            return null;
        }

        if (fromPeer && privacy.IsEnabled && info.IsPrivate)
        {
            log.Source = "private";
            return NotFound(path, PrivateToPeers);
        }

        if (info.IsManifest == true)
        {
            return NotFound(path, "the digest is a manifest: ask the manifests endpoint");
        }

        context.Response.Headers[ContentDigestHeader] = digest.ToString();
        var file = content.GetFilePath(digest);
        if (file is not null && StringValues.IsNullOrEmpty(context.Request.Headers.Range))
        {
            return new FileBlobResult(file, info.Size);
        }

        return file is not null
            ? Results.File(file, MediaTypes.OctetStream, enableRangeProcessing: true)
            : Results.Stream(new SeekableContentStream(info.Size, offset => content.OpenRead(digest, offset)), MediaTypes.OctetStream, enableRangeProcessing: true);
    }

    private static IResult NotFound(DistributionPath path, string detail)
    {
        var what = path.Kind == DistributionPathKind.Manifest ? "manifest" : "blob";
        var key = path.Digest?.ToString() ?? path.Reference?.ToString() ?? path.ToPath();
        return OciErrors.Result(
            StatusCodes.Status404NotFound,
            path.Kind == DistributionPathKind.Manifest ? OciErrors.ManifestUnknown : OciErrors.BlobUnknown,
            $"{what} {key} unknown",
            detail);
    }

    private static IResult PathError(DistributionPathError error) => error switch
    {
        DistributionPathError.NameInvalid => OciErrors.Result(StatusCodes.Status400BadRequest, OciErrors.NameInvalid, "invalid repository name"),
        DistributionPathError.DigestInvalid => OciErrors.Result(StatusCodes.Status400BadRequest, OciErrors.DigestInvalid, "invalid digest: expected sha256:<64 hex> or sha512:<128 hex>"),
        DistributionPathError.TagInvalid => OciErrors.Result(StatusCodes.Status400BadRequest, OciErrors.TagInvalid, "invalid tag"),
        DistributionPathError.TagWithoutNamespace => OciErrors.Result(StatusCodes.Status400BadRequest, OciErrors.NameInvalid, "a manifest asked for by tag needs the ns query parameter naming its registry"),
        DistributionPathError.NamespaceInvalid => OciErrors.Result(StatusCodes.Status400BadRequest, OciErrors.NameInvalid, "the ns query parameter is not a registry host"),
        _ => OciErrors.Result(StatusCodes.Status404NotFound, OciErrors.Unsupported, "not a route of this read-only mirror"),
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "peer request without a valid peer token refused {path} {ip}")]
    private partial void LogPeerRefused(string path, string ip);

    [LoggerMessage(Level = LogLevel.Error, Message = "content store unavailable {path} {error}")]
    private partial void LogContentStoreUnavailable(string path, string error);

    /// <summary>A manifest: its own media type, length and digest; the body only for GET.</summary>
    private sealed class ManifestResult(byte[] bytes, string mediaType) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            var response = httpContext.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = mediaType;
            response.ContentLength = bytes.Length;
            return HttpMethods.IsHead(httpContext.Request.Method)
                ? Task.CompletedTask
                : response.Body.WriteAsync(bytes, httpContext.RequestAborted).AsTask();
        }
    }
}
