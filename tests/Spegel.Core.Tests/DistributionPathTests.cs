namespace Spegel.Core.Tests;

public class DistributionPathTests
{
    private const string Hex64 = "5fcf7ef29eb9819794924a97aba79c77c8810292cad53a90cbda7be1bd892d33";
    private const string Sha256 = "sha256:" + Hex64;
    private const string Sha512 = "sha512:" + Hex64 + Hex64;

    [Theory]
    [InlineData("/v2/library/nginx/manifests/1.27", "docker.io", DistributionPathKind.Manifest, "library/nginx", "docker.io", "1.27", null, "docker.io/library/nginx:1.27")]
    [InlineData("/v2/library/nginx/manifests/1.27", "index.docker.io", DistributionPathKind.Manifest, "library/nginx", "docker.io", "1.27", null, "docker.io/library/nginx:1.27")]
    // containerd always sends library/, but a bare Docker Hub name still resolves to the key the indexer advertises.
    [InlineData("/v2/nginx/manifests/latest", "docker.io", DistributionPathKind.Manifest, "nginx", "docker.io", "latest", null, "docker.io/library/nginx:latest")]
    [InlineData("/v2/library/nginx/manifests/" + Sha256, null, DistributionPathKind.Manifest, "library/nginx", null, null, Sha256, null)]
    [InlineData("/v2/library/nginx/manifests/" + Sha256, "docker.io", DistributionPathKind.Manifest, "library/nginx", "docker.io", null, Sha256, "docker.io/library/nginx@" + Sha256)]
    [InlineData("/v2/x/manifests/" + Sha512, null, DistributionPathKind.Manifest, "x", null, null, Sha512, null)]
    [InlineData("/v2/library/nginx/blobs/" + Sha256, null, DistributionPathKind.Blob, "library/nginx", null, null, Sha256, null)]
    [InlineData("/v2/library/nginx/blobs/" + Sha256, "docker.io", DistributionPathKind.Blob, "library/nginx", "docker.io", null, Sha256, "docker.io/library/nginx@" + Sha256)]
    [InlineData("/v2/spegel-org/spegel/manifests/v0.0.30", "ghcr.io", DistributionPathKind.Manifest, "spegel-org/spegel", "ghcr.io", "v0.0.30", null, "ghcr.io/spegel-org/spegel:v0.0.30")]
    [InlineData("/v2/x/manifests/latest", "localhost:5000", DistributionPathKind.Manifest, "x", "localhost:5000", "latest", null, "localhost:5000/x:latest")]
    [InlineData("/v2/x/manifests/latest", "[::1]:5000", DistributionPathKind.Manifest, "x", "[::1]:5000", "latest", null, "[::1]:5000/x:latest")]
    // The route words may appear inside a name; the segment before last decides.
    [InlineData("/v2/a/manifests/b/manifests/latest", "ghcr.io", DistributionPathKind.Manifest, "a/manifests/b", "ghcr.io", "latest", null, "ghcr.io/a/manifests/b:latest")]
    [InlineData("/v2/a/blobs/b/blobs/" + Sha256, null, DistributionPathKind.Blob, "a/blobs/b", null, null, Sha256, null)]
    [InlineData("/v2/blobs/manifests/_tag", "ghcr.io", DistributionPathKind.Manifest, "blobs", "ghcr.io", "_tag", null, "ghcr.io/blobs:_tag")]
    public void TryParse_ValidRequest_ReturnsParts(
        string path, string? ns, DistributionPathKind kind, string name, string? registry, string? tag, string? digest, string? reference)
    {
        Assert.True(DistributionPath.TryParse(path, ns, out var parsed, out var error));
        Assert.Equal(DistributionPathError.None, error);
        Assert.Equal(kind, parsed.Kind);
        Assert.Equal(name, parsed.Name);
        Assert.Equal(registry, parsed.Registry);
        Assert.Equal(tag, parsed.Tag);
        Assert.Equal(digest, parsed.Digest?.ToString());
        Assert.Equal(reference, parsed.Reference?.ToString());
    }

    [Theory]
    [InlineData("/v2/", null)]
    [InlineData("/v2", null)]
    [InlineData("/v2/", "docker.io")]
    public void TryParse_ApiRoot_ReturnsRoot(string path, string? ns)
    {
        Assert.True(DistributionPath.TryParse(path, ns, out var parsed, out _));
        Assert.Equal(DistributionPathKind.Root, parsed.Kind);
        Assert.Null(parsed.Name);
        Assert.Equal("/v2/", parsed.ToPath());
    }

    [Theory]
    // A tag without ns cannot be tied to a registry.
    [InlineData("/v2/library/nginx/manifests/latest", null, DistributionPathError.TagWithoutNamespace)]
    // Traversal and empty components.
    [InlineData("/v2/../x/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/x/../y/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/./x/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/x/..", "docker.io", DistributionPathError.NotFound)]
    [InlineData("/v2/x/manifests/..", "docker.io", DistributionPathError.TagInvalid)]
    [InlineData("/v2/x/manifests/.", "docker.io", DistributionPathError.TagInvalid)]
    [InlineData("/v2/x/blobs/..", null, DistributionPathError.DigestInvalid)]
    [InlineData("/v2//x/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/a//b/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2//manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    // Upper case and bad separators in names.
    [InlineData("/v2/Library/nginx/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/library/NGINX/blobs/" + Sha256, null, DistributionPathError.NameInvalid)]
    [InlineData("/v2/a..b/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/-a/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    // Digests: blobs need one, short hex, unknown or upper-case algorithm, upper-case hex, a colon that is no digest.
    [InlineData("/v2/x/blobs/latest", "docker.io", DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x/manifests/sha256:5fcf7ef29eb98197", null, DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x/blobs/sha256:5fcf7ef29eb98197", null, DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x/blobs/sha384:" + Hex64, null, DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x/blobs/md5:" + Hex64, null, DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x/blobs/SHA256:" + Hex64, null, DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x/blobs/sha256:5FCF7EF29EB9819794924A97ABA79C77C8810292CAD53A90CBDA7BE1BD892D33", null, DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x/manifests/tag:x", "docker.io", DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x/blobs/" + Hex64, null, DistributionPathError.DigestInvalid)]
    // Percent-encoding tricks: the path is already decoded, so a '%' is never decoded again.
    [InlineData("/v2/%2e%2e/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/a%2Fb/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/a%2fb/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/x/manifests/%2e%2e", "docker.io", DistributionPathError.TagInvalid)]
    [InlineData("/v2/x/manifests/latest%00", "docker.io", DistributionPathError.TagInvalid)]
    [InlineData("/v2/x/blobs/sha256%3A" + Hex64, null, DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x%2Fmanifests%2Flatest", "docker.io", DistributionPathError.NotFound)]
    // Unicode look-alikes: Cyrillic i, full-width l, fraction slash.
    [InlineData("/v2/ng\u0456nx/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/x/manifests/\uff4catest", "docker.io", DistributionPathError.TagInvalid)]
    [InlineData("/v2/a\u2044b/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    // Backslashes, control characters, NUL.
    [InlineData("/v2/x\\y/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/..\\x/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/x/manifests/lat\\est", "docker.io", DistributionPathError.TagInvalid)]
    [InlineData("/v2/x/manifests/lat\test", "docker.io", DistributionPathError.TagInvalid)]
    [InlineData("/v2/x\0/manifests/latest", "docker.io", DistributionPathError.NameInvalid)]
    [InlineData("/v2/x/blobs/" + Sha256 + "\0", null, DistributionPathError.DigestInvalid)]
    [InlineData("/v2/x/manifests/latest\r\n", "docker.io", DistributionPathError.TagInvalid)]
    // Trailing slashes and routes a read-only mirror does not serve.
    [InlineData("/v2/x/manifests/latest/", "docker.io", DistributionPathError.NotFound)]
    [InlineData("/v2/x/manifests/", "docker.io", DistributionPathError.NotFound)]
    [InlineData("/v2/x/blobs/" + Sha256 + "/", null, DistributionPathError.NotFound)]
    [InlineData("/v2/x/tags/list", "docker.io", DistributionPathError.NotFound)]
    [InlineData("/v2/x/blobs/uploads/", null, DistributionPathError.NotFound)]
    [InlineData("/v2/_catalog", null, DistributionPathError.NotFound)]
    [InlineData("/v2//", null, DistributionPathError.NotFound)]
    [InlineData("/v1/x/manifests/latest", "docker.io", DistributionPathError.NotFound)]
    [InlineData("/V2/x/manifests/latest", "docker.io", DistributionPathError.NotFound)]
    [InlineData("v2/x/manifests/latest", "docker.io", DistributionPathError.NotFound)]
    [InlineData("/v2x/manifests/latest", "docker.io", DistributionPathError.NotFound)]
    [InlineData("", null, DistributionPathError.NotFound)]
    [InlineData(null, null, DistributionPathError.NotFound)]
    // The ns value must be a registry host, even when the digest alone would do.
    [InlineData("/v2/x/manifests/latest", "", DistributionPathError.NamespaceInvalid)]
    [InlineData("/v2/x/manifests/latest", "docker io", DistributionPathError.NamespaceInvalid)]
    [InlineData("/v2/x/manifests/latest", "docker.io/library", DistributionPathError.NamespaceInvalid)]
    [InlineData("/v2/x/manifests/latest", "myregistry", DistributionPathError.NamespaceInvalid)]
    [InlineData("/v2/x/manifests/latest", "ghcr.io:0", DistributionPathError.NamespaceInvalid)]
    [InlineData("/v2/x/manifests/latest", "ghcr.io:65536", DistributionPathError.NamespaceInvalid)]
    [InlineData("/v2/x/manifests/latest", "%2e", DistributionPathError.NamespaceInvalid)]
    [InlineData("/v2/x/manifests/latest", "d\u043ecker.io", DistributionPathError.NamespaceInvalid)]
    [InlineData("/v2/x/manifests/" + Sha256, "not a host", DistributionPathError.NamespaceInvalid)]
    public void TryParse_InvalidRequest_ReturnsReason(string? path, string? ns, DistributionPathError expected)
    {
        Assert.False(DistributionPath.TryParse(path, ns, out var parsed, out var error));
        Assert.Null(parsed);
        Assert.Equal(expected, error);
    }

    [Theory]
    [InlineData(128, DistributionPathError.None)]
    [InlineData(129, DistributionPathError.TagInvalid)]
    public void TryParse_TagLength_BoundedAt128(int length, DistributionPathError expected)
    {
        DistributionPath.TryParse("/v2/x/manifests/" + new string('t', length), "ghcr.io", out _, out var error);
        Assert.Equal(expected, error);
    }

    [Theory]
    [InlineData(null, 255, DistributionPathError.None)]
    [InlineData(null, 256, DistributionPathError.NameInvalid)]
    [InlineData("ghcr.io", 247, DistributionPathError.None)] // 7 + 1 + 247 = 255
    [InlineData("ghcr.io", 248, DistributionPathError.NameInvalid)]
    // With library/ added, docker.io + a one-component name must leave room for it.
    [InlineData("docker.io", 237, DistributionPathError.None)]
    [InlineData("docker.io", 238, DistributionPathError.NameInvalid)]
    public void TryParse_NameLength_BoundedAt255WithRegistry(string? ns, int nameLength, DistributionPathError expected)
    {
        DistributionPath.TryParse("/v2/" + new string('a', nameLength) + "/blobs/" + Sha256, ns, out _, out var error);
        Assert.Equal(expected, error);
    }

    [Fact]
    public void TryParse_HugePath_ReturnsNameInvalid()
    {
        DistributionPath.TryParse("/v2/" + string.Concat(Enumerable.Repeat("a/", 500_000)) + "blobs/" + Sha256, null, out _, out var error);
        Assert.Equal(DistributionPathError.NameInvalid, error);
    }

    [Theory]
    [InlineData("/v2/library/nginx/manifests/1.27", "docker.io", "/v2/library/nginx/manifests/1.27?ns=docker.io")]
    [InlineData("/v2/library/nginx/manifests/1.27", "index.docker.io", "/v2/library/nginx/manifests/1.27?ns=docker.io")]
    [InlineData("/v2/library/nginx/manifests/" + Sha256, null, "/v2/library/nginx/manifests/" + Sha256)]
    [InlineData("/v2/a/b/blobs/" + Sha256, "localhost:5000", "/v2/a/b/blobs/" + Sha256 + "?ns=localhost%3A5000")]
    [InlineData("/v2/x/blobs/" + Sha256, "[::1]:5000", "/v2/x/blobs/" + Sha256 + "?ns=%5B%3A%3A1%5D%3A5000")]
    public void ToPathAndQuery_ParsedRequest_RebuildsRequest(string path, string? ns, string expected)
    {
        Assert.True(DistributionPath.TryParse(path, ns, out var parsed, out _));
        Assert.Equal(path, parsed.ToPath());
        Assert.Equal(expected, parsed.ToPathAndQuery());
    }
}
