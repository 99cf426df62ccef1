using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Spegel.Core;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.EndToEnd.Tests.Support;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.EndToEnd.Tests;

/// <summary>
/// Issue 10: on the Dapr transport peers authenticate each other by default. A peer-only request without the shared
/// token is refused, while the registries' own peer requests carry it, so mirrored pulls keep working.
/// </summary>
public sealed class PeerAuthEndToEndTests(ITestOutputHelper output)
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task PeerRequest_DaprTransportWithoutToken_Is401WhileMirroredPullSucceeds()
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var building = new TestImages(upstream).SingleLayerAsync();
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 2, Transport = ClusterTransport.Dapr });
        var image = await building;
        var (node1, node2) = (cluster.Node(1), cluster.Node(2));
        var token = (await File.ReadAllTextAsync(cluster.PeerTokenFile!)).Trim();
        Assert.Equal(cluster.PeerToken, token);

        (await node1.PullAsync(image.Reference)).EnsureSuccess();
        await Discovery.WaitAsync(cluster.ResolverApi, node1.Name, Content.Keys(image), listed: true, TimeSpan.FromSeconds(5), cluster.Describe);
        var layer = image.NativeBlobs.MaxBy(b => b.Size)!;
        var blob = new Uri(node1.Registry.BaseUri, $"/v2/{image.Repository}/blobs/{layer.Digest}?ns={image.Registry}");

        // As a pod on the node network would ask node 1 for its content, pretending to be a peer: no token, a wrong one.
        foreach (var authorization in new[] { null, "Bearer " + new string('0', token.Length) })
        {
            using var request = PeerRequest(blob, authorization);
            using var refused = await Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            using var body = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
            Assert.Equal("UNAUTHORIZED", body.RootElement.GetProperty("errors")[0].GetProperty("code").GetString());
        }

        await Poll.WaitUntilAsync(() => Refusals(node1) == 2, TimeSpan.FromSeconds(5), "node 1 to log both refusals");

        // With the cluster's token (the mounted Secret, in Kubernetes) the same request is served.
        using (var request = PeerRequest(blob, "Bearer " + token))
        using (var served = await Http.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
            Assert.Equal(layer.Digest, Digest.ComputeSha256(await served.Content.ReadAsByteArrayAsync()));
        }

        // And the registries' own peer requests carry it: node 2 pulls from node 1 with the upstream gone.
        await upstream.StopAsync();
        var pull = await node2.PullAsync(image.Reference);
        Assert.True(pull.Succeeded, $"{pull}\n{cluster.Describe()}");
        await Content.AssertHoldsAsync(node2.Containerd, image.NativeBlobs, node2.Name);
        Assert.Contains(node2.Registry.Lines, l => l.Contains("\"handler\":\"blob\"", StringComparison.Ordinal) && l.Contains("\"source\":\"node-1\"", StringComparison.Ordinal));
        Assert.Equal(2, Refusals(node1));
        output.WriteLine($"node 2 pulled {image.Reference} from node 1 over the Dapr transport with the peer token; 2 unauthenticated peer requests refused");
    }

    private static int Refusals(ClusterNode node) =>
        node.Registry.Lines.Count(l => l.Contains("\"msg\":\"peer request without a valid peer token refused\"", StringComparison.Ordinal));

    private static HttpRequestMessage PeerRequest(Uri uri, string? authorization)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Add("X-Spegel-Mirrored", "true");
        if (authorization is not null)
        {
            request.Headers.Authorization = AuthenticationHeaderValue.Parse(authorization);
        }

        return request;
    }
}
