using Dapr.Client;
using Spegel.Core.Events;
using Spegel.Dapr;
using Spegel.DaprDouble;

namespace Spegel.Resolver.Tests;

/// <summary>A backplane and sidecars on it, with the components named as components/ declares them.</summary>
public sealed class DaprSidecarFixture : IAsyncDisposable
{
    private readonly List<IDisposable> _clients = [];

    private DaprSidecarFixture(DaprBackplane backplane, SidecarDouble sidecar)
    {
        Backplane = backplane;
        Sidecar = sidecar;
    }

    public DaprBackplane Backplane { get; }

    /// <summary>The first sidecar (app-id "resolver").</summary>
    public SidecarDouble Sidecar { get; }

    /// <summary>The state store as components/ declares it: shared keys (keyPrefix: name).</summary>
    public static StateStoreComponent StateStore => new(ContentTopics.DefaultStateStore) { KeyPrefix = "name", Type = "state.redis" };

    public static PubSubComponent PubSub => new(ContentTopics.DefaultPubSub) { Type = "pubsub.redis" };

    public static async Task<DaprSidecarFixture> StartAsync(TimeProvider? time = null, string appId = "resolver", string? appUrl = null)
    {
        var backplane = new DaprBackplane(time);
        var sidecar = await StartSidecarAsync(backplane, appId, appUrl);
        return new DaprSidecarFixture(backplane, sidecar);
    }

    public static Task<SidecarDouble> StartSidecarAsync(DaprBackplane backplane, string appId, string? appUrl = null) =>
        SidecarDouble.StartAsync(backplane, new SidecarOptions
        {
            AppId = appId,
            AppUrl = appUrl,
            StateStores = [StateStore],
            PubSubs = [PubSub],
        });

    public DaprClient CreateClient(SidecarDouble? sidecar = null)
    {
        sidecar ??= Sidecar;
        var client = new DaprClientBuilder().UseGrpcEndpoint(sidecar.GrpcEndpoint).UseHttpEndpoint(sidecar.HttpEndpoint).Build();
        _clients.Add(client);
        return client;
    }

    public DaprKeyValueStore CreateStore(SidecarDouble? sidecar = null) => new(CreateClient(sidecar), ContentTopics.DefaultStateStore);

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        await Backplane.DisposeAsync();
    }
}
