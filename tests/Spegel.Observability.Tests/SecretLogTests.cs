using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Spegel.Core;
using Spegel.Core.Content;
using Spegel.Core.Events;
using Spegel.Core.Routing;
using Spegel.DaprDouble;
using Spegel.Hosting;
using Spegel.Observability.Tests.Support;
using Xunit.Abstractions;

namespace Spegel.Observability.Tests;

/// <summary>
/// No secret reaches a log line: a Dapr-mode resolver, indexer and registry, each configured with the peer token,
/// the app API token and the Dapr API token, get accepted and refused requests carrying those tokens (and wrong
/// ones), at the default level and at Debug; no captured line of any of them holds any token string.
/// </summary>
public sealed class SecretLogTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(null)]
    [InlineData("Debug")]
    public async Task Tokens_AcceptedAndRefusedRequests_NeverAppearInAnyLogLine(string? level)
    {
        var peerToken = Secret("peer");
        var appToken = Secret("app");
        var daprToken = Secret("dapr");
        var wrongPeerToken = Secret("wrong-peer");
        var wrongAppToken = Secret("wrong-app");
        string[] secrets = [peerToken, appToken, daprToken, wrongPeerToken, wrongAppToken];

        await using var backplane = new DaprBackplane();
        await using var resolverSidecar = await SidecarDouble.StartAsync(backplane, Sidecar("resolver", daprToken, appToken));
        await using var indexerSidecar = await SidecarDouble.StartAsync(backplane, Sidecar("node-s-indexer", daprToken, appToken));
        await using var registrySidecar = await SidecarDouble.StartAsync(backplane, Sidecar("node-s-registry", daprToken, appToken));

        var content = new InMemoryLocalContent();
        var watcher = new InMemoryContentWatcher();
        await using var resolver = await ServiceHost.StartAsync("resolver", Settings(resolverSidecar, level, peerToken: null));
        await resolverSidecar.AttachAppAsync(resolver.Address, TimeSpan.FromSeconds(20));
        await using var registry = await ServiceHost.StartAsync(
            "registry", Settings(registrySidecar, level, peerToken), services => services.Replace(ServiceDescriptor.Singleton<ILocalContent>(content)));
        var indexerSettings = Settings(indexerSidecar, level, peerToken: null);
        indexerSettings["Spegel:Node:Address"] = registry.Address;
        indexerSettings["Spegel:Indexer:HeartbeatInterval"] = "00:00:00.200";
        await using var indexer = await ServiceHost.StartAsync("indexer", indexerSettings, services => services.Replace(ServiceDescriptor.Singleton<IContentWatcher>(watcher)));

        // A pull on the node: the indexer publishes through its sidecar (Dapr API token), the resolver's sidecar
        // delivers to the resolver (app API token), the resolver writes the state store (Dapr API token).
        var image = new MemoryImage("docker.io/library/secret:1.0");
        content.Add(image.Layer);
        content.Add(image.Config);
        content.Add(image.Manifest, isManifest: true);
        content.Tag(image.Reference, new Descriptor(MediaTypes.OciManifest, image.ManifestDigest, image.Manifest.Length));
        watcher.Put(new ImageContent(image.Reference.ToString(), image.Reference, image.ManifestDigest, [image.ManifestDigest, image.ConfigDigest, image.LayerDigest]));

        // Accepted: a lookup through the sidecar's invoke API, as a registry in Dapr mode sends it.
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(15) };
        var peers = await Eventually.GetAsync(
            async () =>
            {
                using var lookup = new HttpRequestMessage(HttpMethod.Get, $"{resolverSidecar.HttpEndpoint}/v1.0/invoke/resolver/method{PeersRoute.Path}?key={image.LayerDigest}");
                lookup.Headers.Add("dapr-api-token", daprToken);
                using var answer = await http.SendAsync(lookup);
                return answer.IsSuccessStatusCode ? (await answer.Content.ReadFromJsonAsync<PeersResponse>())!.Peers.Count : -(int)answer.StatusCode;
            },
            n => n == 1,
            "the layer advertised through the sidecars");
        Assert.Equal(1, peers);

        // Accepted: a peer's request with the right peer token (and the app token, as a sidecar adds it).
        using (var accepted = PeerRequest(image, peerToken))
        {
            accepted.Headers.Add(AppApiTokenMiddleware.HeaderName, appToken);
            using var response = await registry.Client.SendAsync(accepted);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(image.Layer, await response.Content.ReadAsByteArrayAsync());
        }

        // Refused: a peer's request with the wrong peer token, and one with the token in a malformed header.
        using (var refused = PeerRequest(image, wrongPeerToken))
        {
            using var response = await registry.Client.SendAsync(refused);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        using (var malformed = new HttpRequestMessage(HttpMethod.Get, image.BlobPath(image.LayerDigest)))
        {
            malformed.Headers.Add("X-Spegel-Mirrored", "true");
            malformed.Headers.TryAddWithoutValidation("Authorization", "Token " + wrongPeerToken);
            using var response = await registry.Client.SendAsync(malformed);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        // Refused: the resolver called directly, with a wrong app token and with the Dapr API token instead of it.
        foreach (var presented in new[] { wrongAppToken, daprToken })
        {
            using var direct = new HttpRequestMessage(HttpMethod.Get, $"{PeersRoute.Path}?key={image.LayerDigest}");
            direct.Headers.Add(AppApiTokenMiddleware.HeaderName, presented);
            using var response = await resolver.Client.SendAsync(direct);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        // Refused by the sidecar: a wrong Dapr API token.
        using (var wrong = new HttpRequestMessage(HttpMethod.Get, $"{resolverSidecar.HttpEndpoint}/v1.0/invoke/resolver/method{PeersRoute.Path}?key={image.LayerDigest}"))
        {
            wrong.Headers.Add("dapr-api-token", wrongAppToken);
            using var response = await http.SendAsync(wrong);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        // The lines were written (the refusals say so), and none holds a token.
        await Eventually.GetAsync(
            () => Task.FromResult(resolver.Log.Lines.Count(l => l.Contains("dapr-api-token refused", StringComparison.Ordinal))),
            n => n == 2,
            "the resolver's two refusal lines");
        await Eventually.GetAsync(
            () => Task.FromResult(registry.Log.WithMessage("request").Count(l => l.GetProperty("status").GetInt32() == 401)),
            n => n == 2,
            "the registry's two refused request lines");
        var all = new[] { resolver, registry, indexer }.SelectMany(h => h.Log.Lines.Select(l => (h.Service, Line: l))).ToList();
        output.WriteLine($"level {level ?? "default"}: {all.Count} lines checked (resolver {resolver.Log.Lines.Count}, registry {registry.Log.Lines.Count}, indexer {indexer.Log.Lines.Count})");
        Assert.True(all.Count >= 6, $"only {all.Count} lines captured");
        var leaks = all.Where(l => secrets.Any(s => l.Line.Contains(s, StringComparison.Ordinal))).Select(l => $"{l.Service}: {l.Line}").ToList();
        Assert.True(leaks.Count == 0, "token in a log line:\n" + string.Join('\n', leaks));
    }

    private static string Secret(string what) => $"{what}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(16))}";

    private static HttpRequestMessage PeerRequest(MemoryImage image, string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, image.BlobPath(image.LayerDigest));
        request.Headers.Add("X-Spegel-Mirrored", "true");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    private static SidecarOptions Sidecar(string appId, string daprToken, string appToken) => new()
    {
        AppId = appId,
        StateStores = [new StateStoreComponent(ContentTopics.DefaultStateStore) { KeyPrefix = "name" }],
        PubSubs = [new PubSubComponent(ContentTopics.DefaultPubSub)],
        DaprApiToken = daprToken,
        AppApiToken = appToken,
    };

    /// <summary>What the sidecar injects into its app's environment, plus the node and (for a registry) the peer token.</summary>
    private static Dictionary<string, string?> Settings(SidecarDouble sidecar, string? level, string? peerToken)
    {
        var settings = sidecar.Environment.ToDictionary(e => e.Key, e => (string?)e.Value, StringComparer.Ordinal);
        settings["Spegel:Transport"] = "Dapr";
        settings["Spegel:Node:Name"] = sidecar.AppId == "resolver" ? "resolver" : "node-s";
        if (peerToken is not null)
        {
            settings["Spegel:PeerToken"] = peerToken;
        }

        if (level is not null)
        {
            settings["Serilog:MinimumLevel:Default"] = level;
        }

        return settings;
    }
}
