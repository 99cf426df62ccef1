using Microsoft.Extensions.Logging;

namespace Spegel.DaprDouble;

/// <summary>
/// What a real daprd is given on its command line, in its component YAML and in its environment.
/// One instance per sidecar (per app instance).
/// </summary>
public sealed class SidecarOptions
{
    /// <summary>The app-id (<c>--app-id</c>). Several sidecars may share one: they are instances of one app.</summary>
    public required string AppId { get; init; }

    /// <summary>
    /// Where the app listens (<c>--app-port</c>), e.g. <c>http://127.0.0.1:5002</c>; null when the app receives
    /// nothing (a pure client). It can also be given later with <see cref="SidecarDouble.AttachAppAsync"/>,
    /// for apps that need the sidecar's ports before they can start.
    /// </summary>
    public string? AppUrl { get; init; }

    /// <summary>The Kubernetes namespace, used only by the <c>keyPrefix: namespace</c> strategy.</summary>
    public string? Namespace { get; init; }

    /// <summary>State store components loaded by this sidecar. Default: one store named <c>statestore</c>.</summary>
    public IReadOnlyList<StateStoreComponent> StateStores { get; init; } = [new StateStoreComponent("statestore")];

    /// <summary>Pub/sub components loaded by this sidecar. Default: one named <c>pubsub</c>.</summary>
    public IReadOnlyList<PubSubComponent> PubSubs { get; init; } = [new PubSubComponent("pubsub")];

    /// <summary><c>DAPR_API_TOKEN</c>: when set, every call from the app (gRPC and HTTP, health excepted) must carry it.</summary>
    public string? DaprApiToken { get; init; }

    /// <summary><c>APP_API_TOKEN</c>: when set, the sidecar sends it as <c>dapr-api-token</c> on every call to the app.</summary>
    public string? AppApiToken { get; init; }

    /// <summary>Retries of pub/sub deliveries to this app (what a resiliency policy's inbound retry would say).</summary>
    public DeliveryRetryOptions DeliveryRetry { get; init; } = new();

    /// <summary>How often the sidecar polls the app until <c>GET /dapr/subscribe</c> answers.</summary>
    public TimeSpan AppPollInterval { get; init; } = TimeSpan.FromMilliseconds(25);

    /// <summary>The runtime version reported by the metadata API.</summary>
    public string RuntimeVersion { get; init; } = "1.16.0-double";

    /// <summary>Where the double logs (deliveries dropped, retries, invoke failures). Default: nowhere.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
}

/// <summary>A state store component as it would be declared in YAML.</summary>
public sealed class StateStoreComponent(string name)
{
    /// <summary><c>metadata.name</c> of the component: the <c>storeName</c> the app uses.</summary>
    public string Name { get; } = name;

    /// <summary>
    /// The <c>keyPrefix</c> component metadata: <c>appid</c> (default: <c>&lt;appid&gt;||key</c>), <c>name</c>
    /// (<c>&lt;store name&gt;||key</c>), <c>namespace</c> (<c>&lt;namespace&gt;.&lt;appid&gt;||key</c>), <c>none</c> (the key as is),
    /// or any other string, used as a fixed prefix (<c>&lt;prefix&gt;||key</c>).
    /// </summary>
    public string KeyPrefix { get; init; } = "appid";

    /// <summary><c>spec.type</c>, reported by the metadata API.</summary>
    public string Type { get; init; } = "state.in-memory";

    /// <summary>
    /// Which backing database on the backplane the component points at (its connection string, in effect).
    /// Components with the same backend share one key space. Default: the component name.
    /// </summary>
    public string? Backend { get; init; }

    internal string BackendName => Backend ?? Name;
}

/// <summary>A pub/sub component as it would be declared in YAML. Brokers are shared by name on the backplane.</summary>
public sealed class PubSubComponent(string name)
{
    /// <summary><c>metadata.name</c>: the <c>pubsubName</c> the app uses.</summary>
    public string Name { get; } = name;

    /// <summary><c>spec.type</c>, reported by the metadata API.</summary>
    public string Type { get; init; } = "pubsub.in-memory";
}

/// <summary>Retry policy for deliveries that the app asks to retry (RETRY, non-2xx other than 404, unreachable).</summary>
public sealed class DeliveryRetryOptions
{
    /// <summary>Retries after the first attempt; when exhausted the message goes to the dead-letter topic if any, else is given up.</summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>First backoff; doubles each retry up to <see cref="MaxDelay"/>.</summary>
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Backoff ceiling.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>How long one delivery attempt may take before it counts as failed.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
