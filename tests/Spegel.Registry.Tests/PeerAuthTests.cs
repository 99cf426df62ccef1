using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Spegel.Core.Content;
using Spegel.Core.Routing;

namespace Spegel.Registry.Tests;

/// <summary>The shared peer token: required on peer-only requests, sent on every request to a peer.</summary>
public sealed class PeerAuthTests : IAsyncLifetime
{
    private const string Token = "0123456789abcdef-peer-token";
    private readonly List<IAsyncDisposable> owned = [];
    private readonly TestContent content = new();
    private TinyServer resolver = null!;
    private RegistryApp holder = null!;

    public async Task InitializeAsync()
    {
        holder = await RegistryApp.StartAsync(content.Store, $"--Spegel:PeerToken={Token}");
        owned.Add(holder);
        var peers = new PeersResponse(content.LayerDigest.ToString(), null, [new Peer("holder", holder.Url.ToString())]);
        resolver = await TinyServer.StartAsync(app => app.MapGet(PeersRoute.Path, () => Results.Json(peers, PeersJsonContext.Default.PeersResponse)));
        owned.Add(resolver);
    }

    public async Task DisposeAsync()
    {
        foreach (var o in Enumerable.Reverse(owned))
        {
            await o.DisposeAsync();
        }
    }

    private Uri Layer => new($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative);

    [Theory]
    [InlineData(null, HttpStatusCode.Unauthorized)]
    [InlineData("Bearer wrong-token-wrong-token", HttpStatusCode.Unauthorized)]
    [InlineData("Bearer " + Token, HttpStatusCode.OK)]
    public async Task PeerOnlyRequest_TokenConfigured_OnlyTheTokenGetsContent(string? authorization, HttpStatusCode expected)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Layer);
        request.Headers.Add("X-Spegel-Mirrored", "true");
        if (authorization is not null)
        {
            request.Headers.Authorization = AuthenticationHeaderValue.Parse(authorization);
        }

        using var response = await holder.Client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
    }

    [Fact]
    public async Task LocalContainerdRequest_NoTokenNeeded()
    {
        using var response = await holder.Client.GetAsync(Layer);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Mirror_SameToken_FetchesFromThePeer()
    {
        await using var b = await RegistryApp.StartAsync(new InMemoryLocalContent(), "--Spegel:Node:Name=b", $"--Spegel:Resolver:Url={resolver.Url}", $"--Spegel:PeerToken={Token}");
        using var response = await b.Client.GetAsync(Layer);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.Layer, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Mirror_WrongToken_IsRefusedByThePeerAndAnswers404()
    {
        await using var b = await RegistryApp.StartAsync(new InMemoryLocalContent(), "--Spegel:Node:Name=b", $"--Spegel:Resolver:Url={resolver.Url}", "--Spegel:PeerToken=another-token-another-token");
        using var response = await b.Client.GetAsync(Layer);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("401", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_ShortTokenAndMissingFile_EveryErrorReported()
    {
        var errors = new PeerAuthOptions { PeerToken = "short", PeerTokenFile = "/nonexistent/token" }.Validate().ToList();
        Assert.Equal(3, errors.Count);
    }
}
