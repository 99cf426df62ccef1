using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Spegel.Core.Content;
using Spegel.Core.Events;
using Spegel.DaprDouble;
using Spegel.Hosting;
using Spegel.Observability.Tests.Support;

namespace Spegel.Observability.Tests;

/// <summary>Each service tells its sidecar who it is (extended metadata), retrying in the background until the sidecar answers.</summary>
public sealed class DaprMetadataTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [InlineData("registry")]
    [InlineData("indexer")]
    [InlineData("resolver")]
    public async Task Start_DaprTransport_RegistersNodeRoleAndVersionOnSidecar(string service)
    {
        await using var backplane = new DaprBackplane();
        var sidecar = await SidecarDouble.StartAsync(backplane, Options(service));
        await using var host = await StartAsync(service, sidecar.GrpcEndpoint, sidecar.HttpEndpoint);

        var metadata = await Eventually.GetAsync(
            () => Task.FromResult(sidecar.ExtendedMetadata),
            m => m.ContainsKey(DaprMetadataRegistrar.VersionKey),
            "the extended metadata");
        Assert.Equal("node-m", metadata[DaprMetadataRegistrar.NodeKey]);
        Assert.Equal(service, metadata[DaprMetadataRegistrar.RoleKey]);
        Assert.Matches(@"^\d+\.\d+\.\d+", metadata[DaprMetadataRegistrar.VersionKey]);

        // What `dapr` tooling reads: GET /v1.0/metadata on the sidecar.
        using var http = new HttpClient();
        var answer = await http.GetFromJsonAsync<JsonElement>($"{sidecar.HttpEndpoint}/v1.0/metadata");
        output.WriteLine($"GET {sidecar.HttpEndpoint}/v1.0/metadata -> {answer}");
        Assert.Equal(service, answer.GetProperty("extended").GetProperty(DaprMetadataRegistrar.RoleKey).GetString());
    }

    [Fact]
    public async Task Start_SidecarNotAnsweringYet_StartsAtOnceAndRegistersWhenItAnswers()
    {
        var grpcPort = MetricsTests.ClosedPort();
        await using var backplane = new DaprBackplane();
        await using var host = await StartAsync("registry", $"http://127.0.0.1:{grpcPort}", $"http://127.0.0.1:{MetricsTests.ClosedPort()}");

        Assert.Equal(HttpStatusCode.OK, (await host.Client.GetAsync("/healthz")).StatusCode);
        var registrar = host.Services.GetRequiredService<DaprMetadataRegistrar>();
        Assert.False(registrar.Registered);

        var sidecar = await SidecarDouble.StartAsync(backplane, Options("registry"));
        await using var forwarder = new TcpForwarder(grpcPort, sidecar.GrpcPort);
        await Eventually.GetAsync(
            () => Task.FromResult(sidecar.ExtendedMetadata),
            m => m.ContainsKey(DaprMetadataRegistrar.VersionKey),
            "the metadata once the sidecar answers",
            TimeSpan.FromSeconds(20));
        await Eventually.GetAsync(() => Task.FromResult(registrar.Registered), r => r, "the registrar to finish");
    }

    [Fact]
    public async Task Start_Standalone_DoesNotLookForASidecar()
    {
        await using var host = await ServiceHost.StartAsync("resolver", new Dictionary<string, string?>());
        await Task.Delay(200);
        Assert.False(host.Services.GetRequiredService<DaprMetadataRegistrar>().Registered);
        Assert.DoesNotContain(host.Log.Lines, l => l.Contains("dapr", StringComparison.OrdinalIgnoreCase));
    }

    private static SidecarOptions Options(string appId) => new()
    {
        AppId = appId,
        StateStores = [new StateStoreComponent(ContentTopics.DefaultStateStore) { KeyPrefix = "name" }],
        PubSubs = [new PubSubComponent(ContentTopics.DefaultPubSub)],
    };

    private static Task<ServiceHost> StartAsync(string service, string grpc, string http) =>
        ServiceHost.StartAsync(
            service,
            new Dictionary<string, string?>
            {
                ["Spegel:Transport"] = "Dapr",
                ["Spegel:Node:Name"] = "node-m",
                ["Spegel:Node:Address"] = "http://127.0.0.1:1",
                // A Dapr registry does not start without the peers' shared token.
                ["Spegel:PeerToken"] = "0123456789abcdef-peer-token",
                ["DAPR_GRPC_ENDPOINT"] = grpc,
                ["DAPR_HTTP_ENDPOINT"] = http,
            },
            services =>
            {
                services.Replace(ServiceDescriptor.Singleton<ILocalContent>(new InMemoryLocalContent()));
                services.Replace(ServiceDescriptor.Singleton<IContentWatcher>(new InMemoryContentWatcher()));
            });
}
