using System.Net;
using System.Net.Http.Headers;
using Spegel.Core;
using Spegel.Core.Content;

namespace Spegel.Registry.Tests;

/// <summary>Blobs served from a content file, as with containerd's readable content directory.</summary>
public sealed class FileBlobTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("spegel-blobs-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    private FileBackedContent Content(TestContent content)
    {
        File.WriteAllBytes(Path.Combine(directory, content.LayerDigest.Hex), content.Layer);
        return new FileBackedContent(content.Store, directory);
    }

    [Fact]
    public async Task Get_FileOnDisk_ServesEveryByteWithHeaders()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(Content(content));

        using var response = await app.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.Layer, await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(content.Layer.Length, response.Content.Headers.ContentLength);
        Assert.Equal("bytes", Assert.Single(response.Headers.AcceptRanges));
        Assert.Equal(content.LayerDigest.ToString(), Assert.Single(response.Headers.GetValues("Docker-Content-Digest")));
    }

    [Fact]
    public async Task Head_FileOnDisk_HeadersOnly()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(Content(content));
        using var response = await app.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/library/app/blobs/{content.LayerDigest}"));
        Assert.Equal(content.Layer.Length, response.Content.Headers.ContentLength);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Range_FileOnDisk_StillPartial()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(Content(content));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/library/app/blobs/{content.LayerDigest}");
        request.Headers.Range = new RangeHeaderValue(10, 19);
        using var response = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(content.Layer[10..20], await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Get_FileShorterThanItsSize_ResponseIsBrokenNotShort()
    {
        var content = new TestContent();
        var store = Content(content);
        File.WriteAllBytes(Path.Combine(directory, content.LayerDigest.Hex), content.Layer[..1000]);
        await using var app = await RegistryApp.StartAsync(store);

        await Assert.ThrowsAnyAsync<HttpRequestException>(async () =>
        {
            using var response = await app.Client.GetAsync(new Uri($"/v2/library/app/blobs/{content.LayerDigest}", UriKind.Relative));
            _ = await response.Content.ReadAsByteArrayAsync();
        });
    }

    private sealed class FileBackedContent(InMemoryLocalContent inner, string directory) : ILocalContent
    {
        public Task<Descriptor?> ResolveTagAsync(Reference reference, CancellationToken cancellationToken) => inner.ResolveTagAsync(reference, cancellationToken);

        public Task<LocalContentInfo?> GetInfoAsync(Digest digest, CancellationToken cancellationToken) => inner.GetInfoAsync(digest, cancellationToken);

        public Task<byte[]?> ReadAllAsync(Digest digest, long maxBytes, CancellationToken cancellationToken) => inner.ReadAllAsync(digest, maxBytes, cancellationToken);

        public string? GetFilePath(Digest digest)
        {
            var path = Path.Combine(directory, digest.Hex);
            return File.Exists(path) ? path : null;
        }

        public Stream OpenRead(Digest digest, long offset) => inner.OpenRead(digest, offset);
    }
}
