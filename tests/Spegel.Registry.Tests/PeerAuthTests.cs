using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Spegel.Core.Content;
using Spegel.Core.Routing;
using Spegel.Hosting;

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
    public void Options_ShortTokenAndMissingFile_EveryErrorReported()
    {
        var errors = new PeerAuthOptions { PeerToken = "short", PeerTokenFile = "/nonexistent/token" }.Validate().ToList();
        Assert.Equal(3, errors.Count);
    }

    [Fact]
    public async Task PeerOnlyRequest_StandaloneOnLoopbackWithoutToken_IsServed()
    {
        // The one case without a token: nothing but this machine reaches the port.
        await using var open = await RegistryApp.StartAsync(content.Store);
        Assert.False(open.Services.GetRequiredService<IOptions<PeerAuthOptions>>().Value.IsOn);
        using var request = new HttpRequestMessage(HttpMethod.Get, Layer);
        request.Headers.Add("X-Spegel-Mirrored", "true");
        using var response = await open.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task PeerOnlyRequest_WrongToken_Is401WithTheOciErrorBody()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Layer);
        request.Headers.Add("X-Spegel-Mirrored", "true");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token + "x");
        using var response = await holder.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("UNAUTHORIZED", body.RootElement.GetProperty("errors")[0].GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("Bearer " + Token, true)]
    [InlineData("bearer " + Token, true)]
    [InlineData("Bearer " + Token + " ", true)]
    [InlineData("Bearer " + Token + "0", false)]
    [InlineData("Bearer 0123456789abcdef", false)]
    [InlineData("Basic " + Token, false)]
    [InlineData(Token, false)]
    [InlineData("Bearer ", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void Accepts_Authorization_OnlyTheBearerToken(string? authorization, bool accepted) =>
        Assert.Equal(accepted, new PeerAuthOptions { PeerToken = Token }.Accepts(authorization));

    [Fact]
    public void Accepts_RequiredButTokenFileGoneAfterStart_RefusesEverything()
    {
        // Validated at start, deleted since: fail closed, never open.
        var options = new PeerAuthOptions { PeerTokenFile = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N")) };
        options.ReachableBecause = "Spegel:Transport is Dapr";
        Assert.True(options.IsOn);
        Assert.False(options.Accepts(null));
        Assert.False(options.Accepts("Bearer " + Token));
    }

    [Theory]
    [InlineData("http://127.0.0.1:5000", true)]
    [InlineData("http://127.9.8.7:5000", true)]
    [InlineData("http://localhost:5000", true)]
    [InlineData("http://LOCALHOST:5000", true)]
    [InlineData("http://[::1]:5000", true)]
    [InlineData("https://127.0.0.1:5443", true)]
    [InlineData("http://unix:/run/spegel/registry.sock", true)]
    [InlineData("http://+:5000", false)]
    [InlineData("http://*:5000", false)]
    [InlineData("http://0.0.0.0:5000", false)]
    [InlineData("http://[::]:5000", false)]
    [InlineData("http://10.0.0.5:5000", false)]
    [InlineData("http://[fe80::1]:5000", false)]
    [InlineData("http://node-a.example:5000", false)]
    [InlineData("not a url", false)]
    [InlineData("", false)]
    public void IsLoopback_Address_OnlyLoopbackAndLocalSockets(string address, bool loopback) =>
        Assert.Equal(loopback, PeerReachability.IsLoopback(address));

    [Theory]
    [InlineData(Transport.Standalone, null, null)]
    [InlineData(Transport.Standalone, "urls=http://127.0.0.1:5000", null)]
    [InlineData(Transport.Standalone, "urls=http://127.0.0.1:5000;http://[::1]:5000", null)]
    [InlineData(Transport.Dapr, "urls=http://127.0.0.1:5000", "Spegel:Transport is Dapr")]
    [InlineData(Transport.Standalone, "urls=http://127.0.0.1:5000;http://+:5001", "http://+:5001")]
    [InlineData(Transport.Standalone, "urls=http://0.0.0.0:5000", "http://0.0.0.0:5000")]
    [InlineData(Transport.Standalone, "http_ports=8080", "http://*:8080")]
    // urls wins over http_ports (the aspnet images set ASPNETCORE_HTTP_PORTS=8080), as in Kestrel.
    [InlineData(Transport.Standalone, "urls=http://127.0.0.1:5000|http_ports=8080", null)]
    // Kestrel endpoints win over urls, as in Kestrel.
    [InlineData(Transport.Standalone, "urls=http://127.0.0.1:5000|Kestrel:Endpoints:Peers:Url=http://[::]:5000", "http://[::]:5000")]
    [InlineData(Transport.Standalone, "urls=http://+:5000|Kestrel:Endpoints:Local:Url=http://localhost:5000", null)]
    public void Reason_TransportAndListenAddresses_NamesWhatMakesThePortReachable(Transport transport, string? settings, string? expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(
            (settings?.Split('|') ?? []).Select(s => s.Split('=', 2)).Select(kv => KeyValuePair.Create(kv[0], (string?)kv[1]))).Build();

        var reason = PeerReachability.Reason(transport, configuration);

        if (expected is null)
        {
            Assert.Null(reason);
        }
        else
        {
            Assert.Contains(expected, reason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Options_ReachableWithoutToken_OneErrorNamingTheKeyAndBothFixes()
    {
        var error = Assert.Single(new PeerAuthOptions { ReachableBecause = "Spegel:Transport is Dapr" }.Validate());
        Assert.Contains("Spegel:PeerTokenFile", error, StringComparison.Ordinal);
        Assert.Contains("Spegel:Transport is Dapr", error, StringComparison.Ordinal);
        Assert.Contains("kubectl -n spegel create secret generic spegel-peer-token", error, StringComparison.Ordinal);
        Assert.Contains("Spegel:PeerAuthentication=None", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("None", null, true)]
    [InlineData("none", null, true)]
    [InlineData("Token", Token, true)]
    [InlineData("Token", null, false)]
    [InlineData("Off", Token, false)]
    [InlineData("", Token, false)]
    [InlineData("None", Token, false)]
    public void Options_ModeAndToken_ValidOnlyWhenConsistent(string mode, string? token, bool valid)
    {
        var options = new PeerAuthOptions { PeerAuthentication = mode, PeerToken = token, ReachableBecause = "the registry listens beyond loopback (http://+:5000)" };
        var errors = options.Validate().ToList();
        Assert.True(valid == (errors.Count == 0), string.Join(" | ", errors));
        if (!valid && mode is not ("None" or "Token"))
        {
            Assert.Contains(errors, e => e.Contains($"Spegel:PeerAuthentication must be Token or None, not '{mode}'", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Options_TokenFile_IsReadTrimmedAndUsed()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, Token + "\n");
            var options = new PeerAuthOptions { PeerTokenFile = file, ReachableBecause = "Spegel:Transport is Dapr" };
            Assert.Empty(options.Validate());
            Assert.Equal(Token, options.Token);
            Assert.True(options.Accepts("Bearer " + Token));
        }
        finally
        {
            File.Delete(file);
        }
    }
}
