using System.Text.Json;
using System.Text.Json.Serialization;

namespace Spegel.Registry;

/// <summary>Error codes of the OCI distribution spec, and the body it prescribes.</summary>
public static class OciErrors
{
    public const string BlobUnknown = "BLOB_UNKNOWN";
    public const string ManifestUnknown = "MANIFEST_UNKNOWN";
    public const string NameInvalid = "NAME_INVALID";
    public const string NameUnknown = "NAME_UNKNOWN";
    public const string DigestInvalid = "DIGEST_INVALID";
    public const string TagInvalid = "TAG_INVALID";
    public const string Unsupported = "UNSUPPORTED";
    public const string Unavailable = "UNAVAILABLE";
    public const string Unauthorized = "UNAUTHORIZED";

    public static IResult Result(int status, string code, string message, object? detail = null) =>
        new OciErrorResult(status, new OciErrorBody([new OciError(code, message, detail)]));

    private sealed class OciErrorResult(int status, OciErrorBody body) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            // Small and known in full: send it with a Content-Length, as registries do, rather than chunked.
            var bytes = JsonSerializer.SerializeToUtf8Bytes(body, OciErrorJsonContext.Default.OciErrorBody);
            var response = httpContext.Response;
            response.StatusCode = status;
            response.ContentType = "application/json";
            response.ContentLength = bytes.Length;
            if (status == StatusCodes.Status405MethodNotAllowed)
            {
                response.Headers.Allow = "GET, HEAD";
            }

            return HttpMethods.IsHead(httpContext.Request.Method)
                ? Task.CompletedTask
                : response.Body.WriteAsync(bytes, httpContext.RequestAborted).AsTask();
        }
    }
}

public sealed record OciError(string Code, string Message, object? Detail);

public sealed record OciErrorBody(IReadOnlyList<OciError> Errors);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(OciErrorBody))]
[JsonSerializable(typeof(Spegel.Registry.Mirror.MirrorMissDetail))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class OciErrorJsonContext : JsonSerializerContext;
