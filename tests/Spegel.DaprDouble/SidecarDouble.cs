using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Dapr.Client.Autogen.Grpc.v1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;

namespace Spegel.DaprDouble;

/// <summary>
/// A stand-in for one daprd, started in-process on free 127.0.0.1 ports: a gRPC port speaking the subset of
/// <c>dapr.proto.runtime.v1.Dapr</c> the services use, an HTTP port (health, metadata, service invocation),
/// and delivery of pub/sub messages to its app. Sidecars that share a <see cref="DaprBackplane"/> share state,
/// broker and name resolution, as real sidecars share Redis and DNS.
/// </summary>
public sealed partial class SidecarDouble : IAsyncDisposable
{
    internal const string ApiTokenHeader = "dapr-api-token";
    internal const string AppIdHeader = "dapr-app-id";

    private readonly DaprBackplane _backplane;
    private readonly CounterSet _counters = new();
    private readonly ConcurrentDictionary<string, string> _extendedMetadata = new(StringComparer.Ordinal);
    private readonly HttpClient _appClient;
    private readonly ResiliencePipeline<DeliveryOutcome> _deliveryPipeline;
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TaskCompletionSource _appReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private readonly List<PubSubBroker.Consumer> _consumers = [];
    private IReadOnlyList<TopicSubscription> _subscriptions = [];
    private WebApplication? _grpcHost;
    private WebApplication? _httpHost;
    private Task? _discovery;
    private string? _appUrl;
    private int _disposed;

    private SidecarDouble(DaprBackplane backplane, SidecarOptions options)
    {
        _backplane = backplane;
        Options = options;
        _appUrl = options.AppUrl?.TrimEnd('/');
        Logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger($"Spegel.DaprDouble.{options.AppId}");
        State = new StateApi(options, backplane);
        _appClient = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            ConnectTimeout = TimeSpan.FromSeconds(5),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _deliveryPipeline = BuildDeliveryPipeline(options.DeliveryRetry);
    }

    /// <summary>The app-id.</summary>
    public string AppId => Options.AppId;

    /// <summary>The Kubernetes namespace, if any.</summary>
    public string? Namespace => Options.Namespace;

    /// <summary>Where the app listens, once known.</summary>
    public string? AppUrl => Volatile.Read(ref _appUrl);

    /// <summary>The gRPC port (<c>DAPR_GRPC_PORT</c>).</summary>
    public int GrpcPort { get; private set; }

    /// <summary>The HTTP port (<c>DAPR_HTTP_PORT</c>).</summary>
    public int HttpPort { get; private set; }

    /// <summary>What <c>DAPR_GRPC_ENDPOINT</c> would be, e.g. <c>http://127.0.0.1:50001</c>.</summary>
    public string GrpcEndpoint => $"http://127.0.0.1:{GrpcPort}";

    /// <summary>What <c>DAPR_HTTP_ENDPOINT</c> would be, e.g. <c>http://127.0.0.1:3500</c>.</summary>
    public string HttpEndpoint => $"http://127.0.0.1:{HttpPort}";

    /// <summary>The environment an app next to this sidecar would get (endpoints, ports, tokens).</summary>
    public IReadOnlyDictionary<string, string> Environment
    {
        get
        {
            var env = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["APP_ID"] = AppId,
                ["DAPR_GRPC_ENDPOINT"] = GrpcEndpoint,
                ["DAPR_HTTP_ENDPOINT"] = HttpEndpoint,
                ["DAPR_GRPC_PORT"] = GrpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["DAPR_HTTP_PORT"] = HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
            if (Options.DaprApiToken is { } daprToken)
            {
                env["DAPR_API_TOKEN"] = daprToken;
            }

            if (Options.AppApiToken is { } appToken)
            {
                env["APP_API_TOKEN"] = appToken;
            }

            return env;
        }
    }

    /// <summary>Pub/sub activity of this sidecar: what it published, and deliveries to its app.</summary>
    public DeliveryCounters Counters => _counters.Snapshot();

    /// <summary>Extended metadata the app set (<c>SetMetadata</c> over gRPC or <c>PUT /v1.0/metadata/&lt;key&gt;</c>).</summary>
    public IReadOnlyDictionary<string, string> ExtendedMetadata => new Dictionary<string, string>(_extendedMetadata, StringComparer.Ordinal);

    /// <summary>The subscriptions the app declared through <c>GET /dapr/subscribe</c>.</summary>
    public IReadOnlyList<TopicSubscription> Subscriptions => Volatile.Read(ref _subscriptions);

    /// <summary>True once the app answered <c>GET /dapr/subscribe</c> (daprd's "app channel ready").</summary>
    public bool IsAppReady => _appReady.Task.IsCompletedSuccessfully;

    internal SidecarOptions Options { get; }

    internal StateApi State { get; }

    internal ILogger Logger { get; }

    /// <summary>Starts a sidecar on free loopback ports and registers it on the backplane.</summary>
    public static async Task<SidecarDouble> StartAsync(DaprBackplane backplane, SidecarOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(backplane);
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);

        var sidecar = new SidecarDouble(backplane, options);
        try
        {
            sidecar._grpcHost = await StartHostAsync(sidecar, HttpProtocols.Http2, sidecar.ConfigureGrpc, cancellationToken);
            sidecar.GrpcPort = PortOf(sidecar._grpcHost);
            sidecar._httpHost = await StartHostAsync(sidecar, HttpProtocols.Http1, sidecar.ConfigureHttp, cancellationToken);
            sidecar.HttpPort = PortOf(sidecar._httpHost);
        }
        catch
        {
            await sidecar.DisposeAsync();
            throw;
        }

        backplane.Register(sidecar);
        if (sidecar.AppUrl is not null)
        {
            sidecar.StartDiscovery();
        }

        return sidecar;
    }

    /// <summary>
    /// Tells the sidecar where its app listens (for apps started after the sidecar, since they need its ports),
    /// and waits until the app has answered <c>GET /dapr/subscribe</c>.
    /// </summary>
    public async Task AttachAppAsync(string appUrl, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(appUrl);
        if (Interlocked.CompareExchange(ref _appUrl, appUrl.TrimEnd('/'), null) is not null)
        {
            throw new InvalidOperationException($"Sidecar '{AppId}' already has an app at {AppUrl}.");
        }

        StartDiscovery();
        await WaitForAppAsync(timeout, cancellationToken);
    }

    /// <summary>Waits until the app has answered <c>GET /dapr/subscribe</c> and its subscriptions are live.</summary>
    public async Task WaitForAppAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (AppUrl is null)
        {
            throw new InvalidOperationException($"Sidecar '{AppId}' has no app; give SidecarOptions.AppUrl or call AttachAppAsync.");
        }

        try
        {
            await _appReady.Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"The app of sidecar '{AppId}' at {AppUrl} did not answer GET /dapr/subscribe within {timeout}.");
        }
    }

    /// <summary>Waits until every message on the backplane is settled; see <see cref="DaprBackplane.WaitForIdleAsync"/>.</summary>
    public Task WaitForIdleAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _backplane.WaitForIdleAsync(timeout, cancellationToken);

    /// <summary>Stops the sidecar and frees its ports. Messages it was delivering go back to its app's queue.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _backplane.Unregister(this);
        await _lifetime.CancelAsync();
        if (_discovery is not null)
        {
            await _discovery.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        List<PubSubBroker.Consumer> consumers;
        lock (_gate)
        {
            consumers = [.. _consumers];
            _consumers.Clear();
        }

        foreach (var consumer in consumers)
        {
            await consumer.DisposeAsync();
        }

        foreach (var host in new[] { _httpHost, _grpcHost })
        {
            if (host is not null)
            {
                await host.StopAsync(CancellationToken.None);
                await host.DisposeAsync();
            }
        }

        _appClient.Dispose();
        _lifetime.Dispose();
    }

    /// <summary>Alias of <see cref="DisposeAsync"/>.</summary>
    public Task StopAsync() => DisposeAsync().AsTask();

    internal GetMetadataResponse MetadataResponse()
    {
        var response = new GetMetadataResponse { Id = AppId, RuntimeVersion = Options.RuntimeVersion };
        foreach (var store in Options.StateStores)
        {
            response.RegisteredComponents.Add(new RegisteredComponents
            {
                Name = store.Name,
                Type = store.Type,
                Version = "v1",
                Capabilities = { "ETAG", "TRANSACTIONAL", "TTL" },
            });
        }

        foreach (var pubsub in Options.PubSubs)
        {
            response.RegisteredComponents.Add(new RegisteredComponents { Name = pubsub.Name, Type = pubsub.Type, Version = "v1" });
        }

        foreach (var (key, value) in _extendedMetadata)
        {
            response.ExtendedMetadata[key] = value;
        }

        foreach (var subscription in Subscriptions)
        {
            var item = new PubsubSubscription
            {
                PubsubName = subscription.PubSubName,
                Topic = subscription.Topic,
                DeadLetterTopic = subscription.DeadLetterTopic ?? "",
                Type = PubsubSubscriptionType.Programmatic,
                Rules = new PubsubSubscriptionRules(),
            };
            foreach (var (match, path) in Rules(subscription))
            {
                item.Rules.Rules.Add(new PubsubSubscriptionRule { Match = match, Path = path });
            }

            foreach (var (key, value) in subscription.Metadata)
            {
                item.Metadata[key] = value;
            }

            response.Subscriptions.Add(item);
        }

        if (AppUrl is { } appUrl && Uri.TryCreate(appUrl, UriKind.Absolute, out var uri))
        {
            response.AppConnectionProperties = new AppConnectionProperties
            {
                Port = uri.Port,
                Protocol = uri.Scheme,
                ChannelAddress = uri.Host,
                MaxConcurrency = -1,
            };
        }

        return response;
    }

    internal void SetExtendedMetadata(string key, string value)
    {
        if (string.IsNullOrEmpty(key))
        {
            throw DaprApiException.MetadataKeyEmpty();
        }

        _extendedMetadata[key] = value;
    }

    /// <summary>PublishEvent: wraps the data in a CloudEvent and hands it to the broker.</summary>
    internal void Publish(string pubsub, string topic, byte[] data, string? contentType, IReadOnlyDictionary<string, string> metadata, string? traceParent)
    {
        if (Options.PubSubs.Count == 0)
        {
            throw DaprApiException.PubSubNotConfigured();
        }

        if (string.IsNullOrEmpty(pubsub))
        {
            throw DaprApiException.PubSubEmpty();
        }

        if (!Options.PubSubs.Any(p => string.Equals(p.Name, pubsub, StringComparison.Ordinal)))
        {
            throw DaprApiException.PubSubNotFound(pubsub);
        }

        if (string.IsNullOrEmpty(topic))
        {
            throw DaprApiException.TopicEmpty(pubsub);
        }

        var message = CloudEvents.Create(AppId, pubsub, topic, data, contentType, metadata, traceParent, _backplane.TimeProvider.GetUtcNow());
        _counters.Published();
        _backplane.Published(message);
    }

    private static void Validate(SidecarOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.AppId))
        {
            errors.Add("AppId is required.");
        }

        if (options.AppUrl is { } url && !Uri.TryCreate(url, UriKind.Absolute, out _))
        {
            errors.Add($"AppUrl '{url}' is not an absolute URL.");
        }

        foreach (var store in options.StateStores)
        {
            if (StateApi.Prefix(store, options).Contains("||", StringComparison.Ordinal))
            {
                errors.Add($"State store '{store.Name}': keyPrefix '{store.KeyPrefix}' can't contain '||'.");
            }
        }

        errors.AddRange(options.StateStores.GroupBy(s => s.Name).Where(g => g.Count() > 1).Select(g => $"State store '{g.Key}' is declared twice."));
        errors.AddRange(options.PubSubs.GroupBy(p => p.Name).Where(g => g.Count() > 1).Select(g => $"Pub/sub '{g.Key}' is declared twice."));
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }
    }

    private static async Task<WebApplication> StartHostAsync(
        SidecarDouble sidecar,
        HttpProtocols protocols,
        Action<WebApplicationBuilder, WebApplication?> configure,
        CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = typeof(SidecarDouble).Assembly.GetName().Name });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = protocols);
        });
        builder.Logging.ClearProviders();
        // A client that keeps a connection open must not hold a test's teardown for the default 30 s.
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(2));
        builder.Services.AddRouting();
        builder.Services.AddSingleton(sidecar);
        configure(builder, null);
        var app = builder.Build();
        configure(builder, app);
        await app.StartAsync(cancellationToken);
        return app;
    }

    private static int PortOf(WebApplication app) => new Uri(app.Urls.Single()).Port;

    private void ConfigureGrpc(WebApplicationBuilder builder, WebApplication? app)
    {
        if (app is null)
        {
            builder.Services.AddGrpc(grpc => grpc.Interceptors.Add<ApiTokenInterceptor>());
            builder.Services.AddSingleton<DaprGrpcService>();
            builder.Services.TryAddEnumerable(
                ServiceDescriptor.Singleton<Grpc.AspNetCore.Server.Model.IServiceMethodProvider<DaprGrpcService>, DaprGrpcMethodProvider>());
            return;
        }

        app.UseRouting();
        app.MapGrpcService<DaprGrpcService>();
    }

    private static IEnumerable<(string Match, string Path)> Rules(TopicSubscription subscription)
    {
        foreach (var rule in subscription.Rules)
        {
            yield return (rule.Match, rule.Path);
        }

        if ((subscription.DefaultRoute ?? subscription.Route) is { } path)
        {
            yield return ("", path);
        }
    }

    private ResiliencePipeline<DeliveryOutcome> BuildDeliveryPipeline(DeliveryRetryOptions retry)
    {
        var builder = new ResiliencePipelineBuilder<DeliveryOutcome>();
        if (retry.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<DeliveryOutcome>
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result == DeliveryOutcome.Retry),
                MaxRetryAttempts = retry.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = false,
                Delay = retry.InitialDelay,
                MaxDelay = retry.MaxDelay,
                OnRetry = _ =>
                {
                    _counters.Retried();
                    _backplane.CounterSet.Retried();
                    return default;
                },
            });
        }

        return builder.Build();
    }

    private void StartDiscovery() => _discovery = Task.Run(() => DiscoverAsync(_lifetime.Token));

    /// <summary>
    /// Polls the app until <c>GET /dapr/subscribe</c> answers (as daprd waits for the app port), then starts
    /// one consumer per subscription. A 404 means "no programmatic subscriptions".
    /// </summary>
    private async Task DiscoverAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, $"{AppUrl}/dapr/subscribe");
                AddAppToken(request);
                using var response = await _appClient.SendAsync(request, cancellationToken);
                if (!response.IsSuccessStatusCode && response.StatusCode != HttpStatusCode.NotFound)
                {
                    Logger.LogWarning("App {AppId} answered {Status} to GET /dapr/subscribe; no subscriptions", AppId, (int)response.StatusCode);
                }

                var body = response.IsSuccessStatusCode ? await response.Content.ReadAsByteArrayAsync(cancellationToken) : [];
                IReadOnlyList<TopicSubscription> subscriptions;
                try
                {
                    subscriptions = TopicSubscription.ParseList(body);
                }
                catch (JsonException e)
                {
                    Logger.LogWarning(e, "App {AppId} answered GET /dapr/subscribe with invalid JSON; no subscriptions", AppId);
                    subscriptions = [];
                }

                StartConsumers(subscriptions);
                _appReady.TrySetResult();
                return;
            }
            catch (HttpRequestException)
            {
                // The app is not listening yet.
            }

            await Task.Delay(Options.AppPollInterval, TimeProvider.System, cancellationToken);
        }
    }

    private void StartConsumers(IReadOnlyList<TopicSubscription> declared)
    {
        var accepted = new List<TopicSubscription>();
        foreach (var subscription in declared)
        {
            if (!Options.PubSubs.Any(p => p.Name == subscription.PubSubName))
            {
                Logger.LogWarning("App {AppId} subscribes to {Topic} on pub/sub {PubSub}, which this sidecar does not load; ignored", AppId, subscription.Topic, subscription.PubSubName);
                continue;
            }

            if (accepted.Any(a => a.PubSubName == subscription.PubSubName && a.Topic == subscription.Topic))
            {
                Logger.LogWarning("App {AppId} subscribes twice to {Topic} on pub/sub {PubSub}; the first one is kept", AppId, subscription.Topic, subscription.PubSubName);
                continue;
            }

            accepted.Add(subscription);
        }

        lock (_gate)
        {
            if (_lifetime.IsCancellationRequested)
            {
                return;
            }

            Volatile.Write(ref _subscriptions, accepted);
            foreach (var subscription in accepted)
            {
                _consumers.Add(_backplane.Broker.Subscribe(this, subscription));
            }
        }
    }

    private void AddAppToken(HttpRequestMessage request)
    {
        if (Options.AppApiToken is { } token)
        {
            request.Headers.TryAddWithoutValidation(ApiTokenHeader, token);
        }
    }

    internal enum DeliveryOutcome
    {
        Success,
        Retry,
        Drop,
    }

    /// <summary>Delivers one message to the app with daprd's rules and this sidecar's retry policy; settles it in the counters.</summary>
    internal async Task DeliverAsync(TopicSubscription subscription, BrokerMessage message, CancellationToken cancellationToken)
    {
        if (message.ExpiresAt is { } expiry && expiry <= _backplane.TimeProvider.GetUtcNow())
        {
            Logger.LogWarning("Message {Id} on {Topic} expired before delivery to {AppId}; dropped", message.Id, message.Topic, AppId);
            Settle(DeliveryOutcome.Drop);
            return;
        }

        var path = subscription.ResolvePath(message.Attributes);
        if (path is null)
        {
            Logger.LogWarning("No route of app {AppId} matches message {Id} on {Topic}; dropped", AppId, message.Id, message.Topic);
            Settle(DeliveryOutcome.Drop);
            return;
        }

        var outcome = await _deliveryPipeline.ExecuteAsync(
            static (state, token) => new ValueTask<DeliveryOutcome>(
                state.Sidecar.AttemptAsync(state.Subscription, state.Message, state.Path, token)),
            (Sidecar: this, Subscription: subscription, Message: message, Path: path),
            cancellationToken);

        if (outcome == DeliveryOutcome.Retry)
        {
            _counters.Exhausted();
            _backplane.CounterSet.Exhausted();
            if (subscription.DeadLetterTopic is { } deadLetter)
            {
                Logger.LogWarning("Message {Id} on {Topic} exhausted its retries at {AppId}; sent to dead-letter topic {DeadLetter}", message.Id, message.Topic, AppId, deadLetter);
                _backplane.Broker.Publish(message.WithTopic(deadLetter));
            }
            else
            {
                Logger.LogError("Message {Id} on {Topic} exhausted its retries at {AppId}; given up", message.Id, message.Topic, AppId);
            }

            return;
        }

        Settle(outcome);
    }

    private void Settle(DeliveryOutcome outcome)
    {
        if (outcome == DeliveryOutcome.Success)
        {
            _counters.Delivered();
            _backplane.CounterSet.Delivered();
        }
        else
        {
            _counters.Dropped();
            _backplane.CounterSet.Dropped();
        }
    }

    private async Task<DeliveryOutcome> AttemptAsync(TopicSubscription subscription, BrokerMessage message, string path, CancellationToken cancellationToken)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(Options.DeliveryRetry.AttemptTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{AppUrl}/{path.TrimStart('/')}");
        var content = subscription.RawPayload ? new ByteArrayContent(message.Data) : new ByteArrayContent(message.CloudEvent);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(subscription.RawPayload ? message.DataContentType : CloudEvents.ContentType);
        request.Content = content;
        AddAppToken(request);
        if (message.Attributes.TryGetValue("traceparent", out var traceParent) && traceParent.Length > 0)
        {
            request.Headers.TryAddWithoutValidation("traceparent", traceParent);
        }

        try
        {
            using var response = await _appClient.SendAsync(request, attempt.Token);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                Logger.LogError("App {AppId} answered 404 to message {Id} on {Topic} at /{Path}; dropped", AppId, message.Id, message.Topic, path);
                return DeliveryOutcome.Drop;
            }

            if (!response.IsSuccessStatusCode)
            {
                Logger.LogWarning("App {AppId} answered {Status} to message {Id} on {Topic}; will retry", AppId, (int)response.StatusCode, message.Id, message.Topic);
                return DeliveryOutcome.Retry;
            }

            var body = await response.Content.ReadAsByteArrayAsync(attempt.Token);
            return Classify(body, message);
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Logger.LogWarning(e, "Delivering message {Id} on {Topic} to app {AppId} failed; will retry", message.Id, message.Topic, AppId);
            return DeliveryOutcome.Retry;
        }
    }

    /// <summary>daprd's reading of a 2xx answer: empty, not JSON or no status = SUCCESS; RETRY; DROP; any other status = error, retried.</summary>
    private DeliveryOutcome Classify(byte[] body, BrokerMessage message)
    {
        if (body.Length == 0)
        {
            return DeliveryOutcome.Success;
        }

        string? status;
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return DeliveryOutcome.Success;
            }

            var property = document.RootElement.EnumerateObject()
                .FirstOrDefault(p => string.Equals(p.Name, "status", StringComparison.OrdinalIgnoreCase));
            if (property.Value.ValueKind == JsonValueKind.Undefined)
            {
                return DeliveryOutcome.Success;
            }

            if (property.Value.ValueKind != JsonValueKind.String)
            {
                return DeliveryOutcome.Success;
            }

            status = property.Value.GetString();
        }
        catch (JsonException)
        {
            return DeliveryOutcome.Success;
        }

        switch (status)
        {
            case "" or "SUCCESS":
                return DeliveryOutcome.Success;
            case "RETRY":
                return DeliveryOutcome.Retry;
            case "DROP":
                Logger.LogWarning("App {AppId} answered DROP to message {Id} on {Topic}; dropped", AppId, message.Id, message.Topic);
                return DeliveryOutcome.Drop;
            default:
                Logger.LogWarning("App {AppId} answered unknown status {Status} to message {Id}; will retry", AppId, status, message.Id);
                return DeliveryOutcome.Retry;
        }
    }
}
