using System.Net;
using Spegel.Core;
using Spegel.Core.Content;

namespace Spegel.Registry.Tests;

/// <summary>Spegel:PrivateRepositories keeps content pulled with a node's own credentials off the peer path.</summary>
public class PrivateContentTests
{
    private const string PrivateOption = @"--Spegel:PrivateRepositories:0=^ghcr\.io/acme/";

    private static HttpRequestMessage FromPeer(string path)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("X-Spegel-Mirrored", "true");
        return request;
    }

    [Fact]
    public async Task PeerAsksForPrivateBlob_404EvenThoughHeld()
    {
        var store = new InMemoryLocalContent();
        var secret = store.Add([1, 2, 3], isPrivate: true);
        await using var app = await RegistryApp.StartAsync(store, PrivateOption);

        using var response = await app.Client.SendAsync(FromPeer($"/v2/acme/app/blobs/{secret}?ns=ghcr.io"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("private", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PeerAsksForPublicBlob_Served()
    {
        var store = new InMemoryLocalContent();
        var shared = store.Add([4, 5, 6]);
        await using var app = await RegistryApp.StartAsync(store, PrivateOption);

        using var response = await app.Client.SendAsync(FromPeer($"/v2/library/base/blobs/{shared}?ns=docker.io"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task PeerAsksForPrivateTag_404()
    {
        var content = new TestContent();
        content.Store.Tag(Reference.Parse("ghcr.io/acme/app:1"), new Descriptor(MediaTypes.OciIndex, content.IndexDigest, content.Index.Length));
        await using var app = await RegistryApp.StartAsync(content.Store, PrivateOption);

        using var response = await app.Client.SendAsync(FromPeer("/v2/acme/app/manifests/1?ns=ghcr.io"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task LocalClientAsksForPrivateTagNotHeld_404AtOnceWithoutAskingPeers()
    {
        await using var app = await RegistryApp.StartAsync(new InMemoryLocalContent(), PrivateOption, "--Spegel:Resolver:Url=http://127.0.0.1:9");

        using var response = await app.Client.GetAsync(new Uri("/v2/acme/app/manifests/1?ns=ghcr.io", UriKind.Relative));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("private repository", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoPatterns_PrivateLabelIgnored()
    {
        var store = new InMemoryLocalContent();
        var blob = store.Add([7, 8, 9], isPrivate: true);
        await using var app = await RegistryApp.StartAsync(store);

        using var response = await app.Client.SendAsync(FromPeer($"/v2/acme/app/blobs/{blob}?ns=ghcr.io"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
