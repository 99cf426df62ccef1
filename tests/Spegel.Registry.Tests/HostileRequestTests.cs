using System.Text.Json;

namespace Spegel.Registry.Tests;

public class HostileRequestTests
{
    private const string Unknown = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    public static TheoryData<string, string, int, string?> Cases()
    {
        var content = new TestContent();
        return new TheoryData<string, string, int, string?>
        {
            { "GET", "/v2/../etc/passwd", 404, null },
            { "GET", "/v2/library/../../etc/passwd/manifests/1.0?ns=docker.io", 404, null },
            { "GET", "/v2/library/%2e%2e/manifests/1.0?ns=docker.io", 400, "NAME_INVALID" },
            { "GET", "/v2/library/app%2Fx/manifests/1.0?ns=docker.io", 400, "NAME_INVALID" },
            { "GET", "/v2/library/App/manifests/1.0?ns=docker.io", 400, "NAME_INVALID" },
            { "GET", "/v2//app/manifests/1.0?ns=docker.io", 400, "NAME_INVALID" },
            { "GET", "/v2/library\\app/manifests/1.0?ns=docker.io", 400, "NAME_INVALID" },
            { "GET", "/v2/" + new string('a', 300) + "/manifests/1.0?ns=docker.io", 400, "NAME_INVALID" },
            { "GET", "/v2/library/app/manifests/" + new string('t', 129) + "?ns=docker.io", 400, "TAG_INVALID" },
            { "GET", "/v2/library/app/manifests/-tag?ns=docker.io", 400, "TAG_INVALID" },
            { "GET", "/v2/library/app/manifests/t%C3%A5g?ns=docker.io", 400, null },
            { "GET", "/v2/library/app/manifests/1.0", 400, "NAME_INVALID" },
            { "GET", "/v2/library/app/manifests/1.0?ns=", 400, "NAME_INVALID" },
            { "GET", "/v2/library/app/manifests/1.0?ns=not%20a%20host", 400, "NAME_INVALID" },
            { "GET", "/v2/library/app/manifests/1.0?ns=docker.io/evil", 400, "NAME_INVALID" },
            { "GET", "/v2/library/app/manifests/1.0?ns=docker.io&ns=ghcr.io", 400, "NAME_INVALID" },
            { "GET", "/v2/library/app/blobs/sha256:abc", 400, "DIGEST_INVALID" },
            { "GET", "/v2/library/app/blobs/md5:" + new string('a', 32), 400, "DIGEST_INVALID" },
            { "GET", "/v2/library/app/blobs/sha384:" + new string('a', 96), 400, "DIGEST_INVALID" },
            { "GET", "/v2/library/app/blobs/latest", 400, "DIGEST_INVALID" },
            { "GET", "/v2/library/app/manifests/sha256:" + new string('A', 64), 400, "DIGEST_INVALID" },
            { "GET", "/v2/library/app/blobs/", 404, null },
            { "GET", "/v2/library/app/manifests/1.0/extra?ns=docker.io", 404, null },
            { "GET", "/v2/library/app/tags/list", 404, "UNSUPPORTED" },
            { "GET", "/v2/_catalog", 404, null },
            { "POST", "/v2/library/app/blobs/uploads/", 405, "UNSUPPORTED" },
            { "PUT", "/v2/library/app/manifests/1.0?ns=docker.io", 405, "UNSUPPORTED" },
            { "DELETE", $"/v2/library/app/blobs/{content.LayerDigest}", 405, "UNSUPPORTED" },
            { "PATCH", $"/v2/library/app/blobs/{content.LayerDigest}", 405, "UNSUPPORTED" },
            { "OPTIONS", "/v2/", 405, "UNSUPPORTED" },
            { "GET", $"/v2/library/app/blobs/{Unknown}", 404, "BLOB_UNKNOWN" },
            { "GET", $"/v2/library/app/manifests/{Unknown}", 404, "MANIFEST_UNKNOWN" },
            { "GET", "/v2/library/app/manifests/nope?ns=docker.io", 404, "MANIFEST_UNKNOWN" },
            { "GET", $"/v2/library/app/blobs/{content.IndexDigest}", 404, "BLOB_UNKNOWN" },
            { "GET", $"/v2/library/app/manifests/{content.LayerDigest}", 404, "MANIFEST_UNKNOWN" },
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Request_Malformed_Gets4xxAndServiceKeepsServing(string method, string target, int expectedStatus, string? expectedCode)
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);

        var (status, _, body) = await RawHttp.SendAsync(app.Url, method, target);

        Assert.Equal(expectedStatus, status);
        if (expectedCode is not null)
        {
            using var doc = JsonDocument.Parse(body);
            Assert.Equal(expectedCode, doc.RootElement.GetProperty("errors")[0].GetProperty("code").GetString());
        }

        var (after, _, _) = await RawHttp.SendAsync(app.Url, "GET", $"/v2/library/app/blobs/{content.LayerDigest}");
        Assert.Equal(200, after);
    }

    [Theory]
    [InlineData("Range: bytes=2000000-3000000\r\n", 416)]
    [InlineData("Range: bytes=1048576-\r\n", 416)]
    [InlineData("X-Big: " + "a" /* replaced below */ + "\r\n", 431)]
    public async Task Request_BadRangeOrHugeHeader_Gets4xx(string header, int expected)
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        if (expected == 431)
        {
            header = "X-Big: " + new string('a', 32 * 1024) + "\r\n";
        }

        var (status, head, _) = await RawHttp.SendAsync(app.Url, "GET", $"/v2/library/app/blobs/{content.LayerDigest}", header);

        Assert.Equal(expected, status);
        if (expected == 416)
        {
            Assert.Contains($"Content-Range: bytes */{content.Layer.Length}", head, StringComparison.OrdinalIgnoreCase);
        }

        var (after, _, _) = await RawHttp.SendAsync(app.Url, "GET", "/v2/");
        Assert.Equal(200, after);
    }

    [Fact]
    public async Task Request_HugeRequestLine_Gets414()
    {
        await using var app = await RegistryApp.StartAsync(new TestContent().Store);
        var (status, _, _) = await RawHttp.SendAsync(app.Url, "GET", "/v2/" + new string('a', 10_000) + "/manifests/x");
        Assert.Equal(414, status);
    }
}
