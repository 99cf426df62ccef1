using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Spegel.Core;
using ContentApi = Spegel.Containerd.Api.Content;
using EventsApi = Spegel.Containerd.Api.EventsService;
using ImageEventsApi = Spegel.Containerd.Api.Events;
using ImagesApi = Spegel.Containerd.Api.Images;
using VersionApi = Spegel.Containerd.Api.Version;

namespace Spegel.Containerd;

/// <summary>
/// A read-only gRPC client for containerd over its Unix socket: version, images, content and image events.
/// Thread-safe; one instance per process is enough (one HTTP/2 connection, reconnected on demand).
/// </summary>
public sealed partial class ContainerdClient : IAsyncDisposable
{
    private const string NamespaceHeader = "containerd-namespace";
    private const string ImageTopicPrefix = "/images/";

    private readonly string _socket;
    private readonly string _namespace;
    private readonly string? _contentPath;
    private readonly TimeSpan _requestTimeout;
    private readonly ILogger _logger;
    private readonly GrpcChannel _channel;
    private readonly Metadata _headers;
    private readonly VersionApi.Version.VersionClient _version;
    private readonly ImagesApi.Images.ImagesClient _images;
    private readonly ContentApi.Content.ContentClient _content;
    private readonly EventsApi.Events.EventsClient _events;

    public ContainerdClient(ContainerdOptions options)
        : this(options, null)
    {
    }

    public ContainerdClient(ContainerdOptions options, ILogger<ContainerdClient>? logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Socket);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Namespace);

        _socket = options.Socket;
        _namespace = options.Namespace;
        _contentPath = string.IsNullOrWhiteSpace(options.ContentPath) ? null : options.ContentPath;
        _requestTimeout = options.RequestTimeout;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _headers = new Metadata { { NamespaceHeader, _namespace } };

        var handler = new SocketsHttpHandler
        {
            ConnectCallback = ConnectAsync,
            ConnectTimeout = options.ConnectTimeout,

            // No HTTP/2 keep-alive pings: over a Unix socket a dead daemon closes the connection at once, and
            // grpc-go (containerd) answers pings more frequent than every 5 minutes on an idle stream with
            // GOAWAY too_many_pings, which would cut the long-lived event subscription.
            KeepAlivePingDelay = Timeout.InfiniteTimeSpan,
            EnableMultipleHttp2Connections = true,
        };
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,

            // containerd's own server limit; manifests and Read chunks are far smaller.
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        });

        _version = new VersionApi.Version.VersionClient(_channel);
        _images = new ImagesApi.Images.ImagesClient(_channel);
        _content = new ContentApi.Content.ContentClient(_channel);
        _events = new EventsApi.Events.EventsClient(_channel);
    }

    public string Socket => _socket;

    public string Namespace => _namespace;

    /// <summary>containerd's version string, e.g. <c>1.6.20~ds1</c>.</summary>
    public async Task<string> GetVersionAsync(CancellationToken ct)
    {
        try
        {
            var response = await _version.VersionAsync(new Empty(), UnaryOptions(ct)).ConfigureAwait(false);
            return response.Version;
        }
        catch (RpcException ex)
        {
            throw Translate(ex, ct);
        }
    }

    /// <summary>Every image in the namespace. Images whose target is unusable (invalid digest) are skipped and logged.</summary>
    public async Task<IReadOnlyList<ContainerdImage>> ListImagesAsync(CancellationToken ct)
    {
        ImagesApi.ListImagesResponse response;
        try
        {
            response = await _images.ListAsync(new ImagesApi.ListImagesRequest(), UnaryOptions(ct)).ConfigureAwait(false);
        }
        catch (RpcException ex)
        {
            throw Translate(ex, ct);
        }

        var images = new List<ContainerdImage>(response.Images.Count);
        foreach (var image in response.Images)
        {
            if (TryConvert(image, _logger) is { } converted)
            {
                images.Add(converted);
            }
        }

        return images;
    }

    /// <summary>The image with this containerd name, or null when there is none (or its target is unusable).</summary>
    public async Task<ContainerdImage?> GetImageAsync(string name, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        try
        {
            var response = await _images.GetAsync(new ImagesApi.GetImageRequest { Name = name }, UnaryOptions(ct)).ConfigureAwait(false);
            return response.Image is null ? null : TryConvert(response.Image, _logger);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
        catch (RpcException ex)
        {
            throw Translate(ex, ct);
        }
    }

    /// <summary>Size, times and labels of a committed blob; null when the namespace does not hold it.</summary>
    public async Task<ContentInfo?> GetContentInfoAsync(Digest digest, CancellationToken ct)
    {
        EnsureValid(digest);
        ContentApi.InfoResponse response;
        try
        {
            response = await _content.InfoAsync(new ContentApi.InfoRequest { Digest = digest.ToString() }, UnaryOptions(ct)).ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
        catch (RpcException ex)
        {
            throw Translate(ex, ct);
        }

        var info = response.Info;
        if (info is null)
        {
            return null;
        }

        return new ContentInfo(
            Digest.TryParse(info.Digest, out var d) ? d : digest,
            info.Size,
            ToTime(info.CreatedAt),
            ToTime(info.UpdatedAt),
            CopyLabels(info.Labels));
    }

    /// <summary>
    /// A forward-only stream over the blob's bytes from <paramref name="offset"/>, read lazily chunk by chunk
    /// through <c>Content.Read</c>. The call starts on the first read; a missing blob surfaces there as
    /// <see cref="ContentNotFoundException"/>. Dispose the stream to end the call.
    /// </summary>
    public Stream OpenRead(Digest digest, long offset = 0, long? length = null)
    {
        EnsureValid(digest);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (length is { } l)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(l);
        }

        return new ContentReadStream(this, digest, offset, length);
    }

    /// <summary>
    /// The whole blob in memory, for small content (manifests, indexes, configs). Null when the blob is not found.
    /// Throws <see cref="InvalidDataException"/> when the blob is larger than <paramref name="maxBytes"/>.
    /// </summary>
    public async Task<byte[]?> ReadAllAsync(Digest digest, long maxBytes, CancellationToken ct)
    {
        EnsureValid(digest);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);

        // Ask for one byte more than allowed: receiving it proves the blob is too large without reading all of it.
        var request = new ContentApi.ReadContentRequest
        {
            Digest = digest.ToString(),
            Size = maxBytes == long.MaxValue ? 0 : maxBytes + 1,
        };
        var buffer = new ArrayBufferWriter<byte>();
        try
        {
            using var call = _content.Read(request, StreamOptions(ct));
            while (await call.ResponseStream.MoveNext(ct).ConfigureAwait(false))
            {
                var data = call.ResponseStream.Current.Data.Span;
                if (buffer.WrittenCount + (long)data.Length > maxBytes)
                {
                    throw new InvalidDataException($"content {digest} is larger than the allowed {maxBytes} bytes");
                }

                buffer.Write(data);
            }
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
        catch (RpcException ex)
        {
            throw Translate(ex, ct);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// The blob's file in containerd's content directory, or null when file access is off, the directory is not
    /// readable or the file does not exist. The content store is shared by all namespaces: check
    /// <see cref="GetContentInfoAsync"/> first when namespace ownership matters.
    /// </summary>
    public string? GetContentFilePath(Digest digest)
    {
        EnsureValid(digest);
        if (_contentPath is null)
        {
            return null;
        }

        var path = Path.Combine(_contentPath, "blobs", digest.Algorithm, digest.Hex);
        return File.Exists(path) ? path : null;
    }

    /// <summary>
    /// Image create, update and delete events of this namespace, in the order containerd publishes them, until
    /// <paramref name="ct"/> is cancelled. Only events after the subscription is established are seen: list
    /// images after subscribing to avoid a gap. Throws <see cref="ContainerdUnavailableException"/> when the
    /// connection is lost; subscribe again after a resync.
    /// </summary>
    public async IAsyncEnumerable<ImageEvent> SubscribeImageEventsAsync([EnumeratorCancellation] CancellationToken ct)
    {
        var request = new EventsApi.SubscribeRequest
        {
            // One filter: its clauses are ANDed (several filters would be ORed).
            Filters = { $"namespace==\"{_namespace}\",topic~=\"^{ImageTopicPrefix}\"" },
        };

        using var call = StartSubscription(request, ct);
        while (true)
        {
            bool more;
            try
            {
                more = await call.ResponseStream.MoveNext(ct).ConfigureAwait(false);
            }
            catch (RpcException ex)
            {
                throw Translate(ex, ct);
            }

            if (!more)
            {
                // containerd closes the stream only when it shuts down.
                throw new ContainerdUnavailableException(_socket, "the event stream was closed by containerd", null);
            }

            if (ToImageEvent(call.ResponseStream.Current) is { } imageEvent)
            {
                yield return imageEvent;
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _channel.Dispose();
        return ValueTask.CompletedTask;
    }

    internal AsyncServerStreamingCall<ContentApi.ReadContentResponse> StartRead(Digest digest, long offset, long? length, CancellationToken ct) =>
        _content.Read(
            new ContentApi.ReadContentRequest { Digest = digest.ToString(), Offset = offset, Size = length ?? 0 },
            StreamOptions(ct));

    /// <summary>
    /// Maps an RPC failure to what callers handle: cancellation they asked for, unavailability (including a daemon
    /// that does not answer in time), missing content, or else the RPC error itself.
    /// </summary>
    internal Exception Translate(RpcException ex, CancellationToken ct, Digest? digest = null)
    {
        if (ex.StatusCode == StatusCode.Cancelled && ct.IsCancellationRequested)
        {
            return new OperationCanceledException(ex.Status.Detail, ex, ct);
        }

        for (Exception? inner = ex.Status.DebugException; inner is not null; inner = inner.InnerException)
        {
            if (inner is ContainerdUnavailableException unavailable)
            {
                return new ContainerdUnavailableException(_socket, unavailable.Reason ?? unavailable.Message, ex);
            }
        }

        return ex.StatusCode switch
        {
            StatusCode.Unavailable => new ContainerdUnavailableException(_socket, Describe(ex), ex),
            StatusCode.DeadlineExceeded => new ContainerdUnavailableException(_socket, $"no answer within {_requestTimeout.TotalSeconds:0.#} s", ex),
            StatusCode.NotFound when digest is { } d => new ContentNotFoundException(d, ex),

            // A daemon that dies mid-stream resets the HTTP/2 connection; the RPC layer reports that as Internal.
            StatusCode.Internal when ex.Status.DebugException is IOException or HttpRequestException =>
                new ContainerdUnavailableException(_socket, Describe(ex), ex),
            _ => ex,
        };
    }

    private static string Describe(RpcException ex)
    {
        var root = ex.Status.DebugException;
        while (root?.InnerException is not null)
        {
            root = root.InnerException;
        }

        if (root is null)
        {
            return ex.Status.Detail;
        }

        // A transport failure on an established connection: the daemon went away (crash, restart, kill).
        return ex.Status.DebugException is HttpRequestException or IOException
            ? $"the connection to containerd was lost ({root.Message})"
            : $"{ex.Status.Detail} ({root.Message})";
    }

    private AsyncServerStreamingCall<EventsApi.Envelope> StartSubscription(EventsApi.SubscribeRequest request, CancellationToken ct)
    {
        try
        {
            return _events.Subscribe(request, StreamOptions(ct));
        }
        catch (RpcException ex)
        {
            throw Translate(ex, ct);
        }
    }

    private ImageEvent? ToImageEvent(EventsApi.Envelope envelope)
    {
        if (!envelope.Topic.StartsWith(ImageTopicPrefix, StringComparison.Ordinal) || envelope.Namespace != _namespace)
        {
            return null;
        }

        var payload = envelope.Event?.Value ?? ByteString.Empty;
        var timestamp = ToTime(envelope.Timestamp);
        try
        {
            return envelope.Topic switch
            {
                "/images/create" => new ImageEvent(ImageEventType.Create, ImageEventsApi.ImageCreate.Parser.ParseFrom(payload).Name, timestamp),
                "/images/update" => new ImageEvent(ImageEventType.Update, ImageEventsApi.ImageUpdate.Parser.ParseFrom(payload).Name, timestamp),
                "/images/delete" => new ImageEvent(ImageEventType.Delete, ImageEventsApi.ImageDelete.Parser.ParseFrom(payload).Name, timestamp),
                _ => null,
            };
        }
        catch (InvalidProtocolBufferException ex)
        {
            Log.UndecodableEvent(_logger, envelope.Topic, ex);
            return null;
        }
    }

    /// <summary>The domain view of a containerd image, or null (logged) when its target cannot be used.</summary>
    internal static ContainerdImage? TryConvert(ImagesApi.Image image, ILogger logger)
    {
        var target = image.Target;
        if (target is null)
        {
            Log.SkippedImage(logger, image.Name, "<none>", "it has no target");
            return null;
        }

        if (!Digest.TryParse(target.Digest, out var digest))
        {
            Log.SkippedImage(logger, image.Name, target.Digest, "its target digest is invalid");
            return null;
        }

        var descriptor = new Descriptor(target.MediaType, digest, target.Size)
        {
            Annotations = target.Annotations.Count == 0 ? null : CopyLabels(target.Annotations),
        };
        return new ContainerdImage(image.Name, descriptor, CopyLabels(image.Labels), ToTime(image.CreatedAt), ToTime(image.UpdatedAt));
    }

    private static Dictionary<string, string> CopyLabels(IDictionary<string, string> source) => new(source, StringComparer.Ordinal);

    private static DateTimeOffset ToTime(Timestamp? timestamp) => timestamp is null ? default : timestamp.ToDateTimeOffset();

    private static void EnsureValid(Digest digest)
    {
        if (digest.IsDefault)
        {
            throw new ArgumentException("The digest is the default value, not a parsed digest.", nameof(digest));
        }
    }

    private CallOptions UnaryOptions(CancellationToken ct) =>
        new(headers: _headers, deadline: DateTime.UtcNow.Add(_requestTimeout), cancellationToken: ct);

    private CallOptions StreamOptions(CancellationToken ct) => new(headers: _headers, cancellationToken: ct);

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        // Checked first so that a missing socket fails at once, naming the path, instead of as a generic connect error.
        if (!File.Exists(_socket))
        {
            throw new ContainerdUnavailableException(_socket, "the socket does not exist", null);
        }

        var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(_socket), ct).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            var reason = ex.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused (is containerd running?)",
                SocketError.AccessDenied => "permission denied on the socket",
                SocketError.AddressNotAvailable => "the socket does not exist",
                _ => ex.Message,
            };
            throw new ContainerdUnavailableException(_socket, reason, ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped containerd image {ImageName} with target {TargetDigest}: {Reason}")]
        public static partial void SkippedImage(ILogger logger, string imageName, string targetDigest, string reason);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Could not decode containerd event on topic {Topic}")]
        public static partial void UndecodableEvent(ILogger logger, string topic, Exception exception);
    }
}
