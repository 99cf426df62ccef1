using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Spegel.Core;

namespace Spegel.Registry.Tests;

public class DistributionApiTests
{
    private static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static async Task<string> ErrorCode(HttpResponseMessage response)
    {
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("errors")[0].GetProperty("code").GetString()!;
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("HEAD")]
    public async Task Root_GetOrHead_AnswersApiVersion(string method)
    {
        await using var app = await RegistryApp.StartAsync(new TestContent().Store);
        using var response = await app.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), "/v2/"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("registry/2.0", Assert.Single(response.Headers.GetValues("Docker-Distribution-API-Version")));
    }

    [Fact]
    public async Task Manifest_ByTag_ServesIndexWithItsMediaTypeAndDigest()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var response = await app.Client.GetAsync(new Uri("/v2/library/app/manifests/1.0?ns=docker.io", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(content.IndexDigest.ToString(), Sha256(body));
        Assert.Equal(MediaTypes.OciIndex, response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        Assert.Equal(content.IndexDigest.ToString(), Assert.Single(response.Headers.GetValues("Docker-Content-Digest")));
    }

    [Fact]
    public async Task Manifest_HeadByTagAndGetByDigest_Agree()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var head = await app.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/library/app/manifests/1.0?ns=docker.io"));
        var digest = Assert.Single(head.Headers.GetValues("Docker-Content-Digest"));
        using var get = await app.Client.GetAsync(new Uri($"/v2/library/app/manifests/{digest}", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        Assert.Equal(head.Content.Headers.ContentLength, get.Content.Headers.ContentLength);
        Assert.Equal(head.Content.Headers.ContentType, get.Content.Headers.ContentType);
        Assert.Equal(digest, Sha256(await get.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task Manifest_ImageManifestByDigest_SniffsMediaType()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var response = await app.Client.GetAsync(new Uri($"/v2/library/app/manifests/{content.ManifestDigest}?ns=docker.io", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(MediaTypes.OciManifest, response.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task Blob_Get_StreamsBytesWithRegistryHeaders()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var response = await app.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.LayerDigest}?ns=docker.io", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.LayerDigest.ToString(), Sha256(await response.Content.ReadAsByteArrayAsync()));
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(content.Layer.Length, response.Content.Headers.ContentLength);
        Assert.Equal("bytes", Assert.Single(response.Headers.AcceptRanges));
        Assert.Equal(content.LayerDigest.ToString(), Assert.Single(response.Headers.GetValues("Docker-Content-Digest")));
    }

    [Fact]
    public async Task Blob_Head_HasHeadersAndNoBody()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var response = await app.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/library/app/blobs/{content.LayerDigest}"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.Layer.Length, response.Content.Headers.ContentLength);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData(0L, 9L)]
    [InlineData(1000L, 1048575L)]
    [InlineData(524288L, 524288L)]
    public async Task Blob_Range_Answers206WithContentRange(long from, long to)
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/library/app/blobs/{content.LayerDigest}");
        request.Headers.Range = new RangeHeaderValue(from, to);
        using var response = await app.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal($"bytes {from}-{to}/{content.Layer.Length}", response.Content.Headers.ContentRange!.ToString());
        Assert.Equal(content.Layer.AsSpan((int)from, (int)(to - from + 1)).ToArray(), await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Blob_SuffixRange_ServesTheLastBytes()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/library/app/blobs/{content.LayerDigest}");
        request.Headers.Range = new RangeHeaderValue(null, 100);
        using var response = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(content.Layer[^100..], await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Blob_ManifestDigest_IsUnknownAsBlob()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var response = await app.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.ManifestDigest}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("BLOB_UNKNOWN", await ErrorCode(response));
    }

    [Fact]
    public async Task Manifest_LayerDigest_IsUnknownAsManifest()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var response = await app.Client.GetAsync(new Uri($"/v2/library/app/manifests/{content.ConfigDigest}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("MANIFEST_UNKNOWN", await ErrorCode(response));
    }

    [Fact]
    public async Task Manifest_MirroredHeader_IsServedFromLocalContent()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v2/library/app/manifests/1.0?ns=docker.io");
        request.Headers.Add("X-Spegel-Mirrored", "true");
        using var response = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.IndexDigest.ToString(), Sha256(await response.Content.ReadAsByteArrayAsync()));
    }

    [Theory]
    [InlineData("/v2/library/app/manifests/1.0?ns=docker.io", "--Spegel:MirroredRegistries:0=ghcr.io", 404)]
    [InlineData("/v2/library/app/manifests/1.0?ns=docker.io", "--Spegel:MirroredRegistries:0=docker.io", 200)]
    [InlineData("/v2/library/app/manifests/latest?ns=docker.io", "--Spegel:RegistryFilters:0=:latest$", 404)]
    [InlineData("/v2/library/app/manifests/1.0?ns=docker.io", "--Spegel:RegistryFilters:0=:latest$", 200)]
    [InlineData("/v2/library/app/manifests/1.0?ns=docker.io", "--Spegel:ResolveTags=false", 404)]
    public async Task Options_FilterRequests_AnswerNotFoundAtOnce(string path, string option, int expected)
    {
        await using var app = await RegistryApp.StartAsync(new TestContent().Store, option);
        using var response = await app.Client.GetAsync(new Uri(path, UriKind.Relative));
        Assert.Equal(expected, (int)response.StatusCode);
    }

    [Fact]
    public async Task Options_ResolveTagsOff_StillServesDigests()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store, "--Spegel:ResolveTags=false");
        using var response = await app.Client.GetAsync(new Uri($"/v2/library/app/manifests/{content.IndexDigest}?ns=docker.io", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task ContentStoreDown_PeerRequest_Answers503WithReason()
    {
        await using var app = await RegistryApp.StartAsync(new UnavailableContent());
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v2/library/app/manifests/1.0?ns=docker.io");
        request.Headers.Add("X-Spegel-Mirrored", "true");
        using var response = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("/run/nowhere.sock", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ContentStoreDown_ClientRequestWithoutResolver_Answers404SoContainerdGoesUpstream()
    {
        await using var app = await RegistryApp.StartAsync(new UnavailableContent());
        using var response = await app.Client.GetAsync(new Uri("/v2/library/app/manifests/1.0?ns=docker.io", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("mirror with image component docker.io/library/app:1.0 could not be found", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private sealed class UnavailableContent : Spegel.Core.Content.ILocalContent
    {
        private static Spegel.Core.Content.ContentStoreUnavailableException Down() => new("containerd socket /run/nowhere.sock does not exist");

        public Task<Descriptor?> ResolveTagAsync(Reference reference, CancellationToken cancellationToken) => throw Down();

        public Task<Spegel.Core.Content.LocalContentInfo?> GetInfoAsync(Digest digest, CancellationToken cancellationToken) => throw Down();

        public Task<byte[]?> ReadAllAsync(Digest digest, long maxBytes, CancellationToken cancellationToken) => throw Down();

        public string? GetFilePath(Digest digest) => null;

        public Stream OpenRead(Digest digest, long offset) => throw Down();
    }
}
