namespace Spegel.Core.Tests;

public class ReferenceTests
{
    private const string Hex64 = "5fcf7ef29eb9819794924a97aba79c77c8810292cad53a90cbda7be1bd892d33";
    private const string Sha256 = "sha256:" + Hex64;
    private const string Sha512 = "sha512:" + Hex64 + Hex64;

    [Theory]
    // Docker Hub normalisation, as containerd stores image names.
    [InlineData("nginx", "docker.io", "library/nginx", "latest", null)]
    [InlineData("nginx:1.27", "docker.io", "library/nginx", "1.27", null)]
    [InlineData("library/nginx", "docker.io", "library/nginx", "latest", null)]
    [InlineData("docker.io/nginx", "docker.io", "library/nginx", "latest", null)]
    [InlineData("docker.io/library/nginx:1.27", "docker.io", "library/nginx", "1.27", null)]
    [InlineData("index.docker.io/nginx", "docker.io", "library/nginx", "latest", null)]
    [InlineData("index.docker.io/user/app:v1", "docker.io", "user/app", "v1", null)]
    [InlineData("user/app", "docker.io", "user/app", "latest", null)]
    [InlineData("user/team/app:v2", "docker.io", "user/team/app", "v2", null)]
    // A bare "host:port" has no slash, so distribution/reference reads it as name:tag on Docker Hub.
    [InlineData("localhost:5000", "docker.io", "library/localhost", "5000", null)]
    [InlineData("example.com", "docker.io", "library/example.com", "latest", null)]
    // Registry hosts: a dot, a colon, localhost, or upper case in the first component.
    [InlineData("ghcr.io/spegel-org/spegel:v0.0.30", "ghcr.io", "spegel-org/spegel", "v0.0.30", null)]
    [InlineData("registry.k8s.io/pause:3.10", "registry.k8s.io", "pause", "3.10", null)]
    [InlineData("localhost/x", "localhost", "x", "latest", null)]
    [InlineData("localhost:5000/x", "localhost:5000", "x", "latest", null)]
    [InlineData("localhost:5000/a/b/c:tag", "localhost:5000", "a/b/c", "tag", null)]
    [InlineData("127.0.0.1:5000/x:1", "127.0.0.1:5000", "x", "1", null)]
    [InlineData("[::1]:5000/x:1", "[::1]:5000", "x", "1", null)]
    [InlineData("[fe80::1]/x", "[fe80::1]", "x", "latest", null)]
    [InlineData("myregistry:5000/x", "myregistry:5000", "x", "latest", null)]
    [InlineData("Registry/x", "Registry", "x", "latest", null)]
    [InlineData("docker.io:443/nginx", "docker.io:443", "nginx", "latest", null)]
    // Digests, with and without a tag.
    [InlineData("nginx@" + Sha256, "docker.io", "library/nginx", null, Sha256)]
    [InlineData("nginx:1.27@" + Sha256, "docker.io", "library/nginx", "1.27", Sha256)]
    [InlineData("quay.io/a/b@" + Sha512, "quay.io", "a/b", null, Sha512)]
    [InlineData("localhost:5000/x:t@" + Sha256, "localhost:5000", "x", "t", Sha256)]
    // Separator grammar and tag alphabet.
    [InlineData("a__b/c-d---e/f.g_h", "docker.io", "a__b/c-d---e/f.g_h", "latest", null)]
    [InlineData("0/1", "docker.io", "0/1", "latest", null)]
    [InlineData("nginx:_private", "docker.io", "library/nginx", "_private", null)]
    [InlineData("nginx:V1.2-rc.3_x", "docker.io", "library/nginx", "V1.2-rc.3_x", null)]
    public void TryParse_ValidReference_NormalisesParts(string input, string registry, string repository, string? tag, string? digest)
    {
        Assert.True(Reference.TryParse(input, out var reference));
        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
        Assert.Equal(digest, reference.Digest?.ToString());
        Assert.Equal($"{registry}/{repository}", reference.Name);
    }

    [Theory]
    [InlineData("nginx", "docker.io/library/nginx:latest")]
    [InlineData("nginx:1.27", "docker.io/library/nginx:1.27")]
    [InlineData("index.docker.io/x", "docker.io/library/x:latest")]
    [InlineData("nginx@" + Sha256, "docker.io/library/nginx@" + Sha256)]
    [InlineData("nginx:1.27@" + Sha256, "docker.io/library/nginx:1.27@" + Sha256)]
    [InlineData("localhost:5000/x", "localhost:5000/x:latest")]
    public void ToString_ValidReference_IsContainerdCanonicalForm(string input, string expected)
    {
        var reference = Reference.Parse(input);
        Assert.Equal(expected, reference.ToString());
        Assert.Equal(reference, Reference.Parse(reference.ToString()));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    // Upper case in the repository (an upper-case first component is a host, so it is tested further in).
    [InlineData("Nginx")]
    [InlineData("library/Nginx")]
    [InlineData("docker.io/Library/nginx")]
    [InlineData("ghcr.io/Org/app")]
    [InlineData("nginx:1.27/x")]
    // Tags.
    [InlineData("nginx:")]
    [InlineData("nginx:.hidden")]
    [InlineData("nginx:-dash")]
    [InlineData("nginx:a+b")]
    [InlineData("nginx:1.27:extra")]
    // Digests: short hex, unknown or upper-case algorithm, upper-case hex, empty, doubled.
    [InlineData("nginx@sha256:5fcf7ef29eb98197")]
    [InlineData("nginx@sha384:" + Hex64)]
    [InlineData("nginx@md5:" + Hex64)]
    [InlineData("nginx@SHA256:" + Hex64)]
    [InlineData("nginx@sha256:5FCF7EF29EB9819794924A97ABA79C77C8810292CAD53A90CBDA7BE1BD892D33")]
    [InlineData("nginx@")]
    [InlineData("@" + Sha256)]
    [InlineData("nginx@" + Sha256 + "@" + Sha256)]
    // Identifiers are not names.
    [InlineData(Sha256)]
    [InlineData(Hex64)]
    // Traversal and empty components.
    [InlineData("../x")]
    [InlineData("a/../b")]
    [InlineData("a/./b")]
    [InlineData("./x")]
    [InlineData("a//b")]
    [InlineData("/a")]
    [InlineData("a/")]
    [InlineData("docker.io/")]
    [InlineData("localhost:5000/")]
    // Component separators.
    [InlineData("a..b")]
    [InlineData("a._b")]
    [InlineData("a___b")]
    [InlineData("a.-b")]
    [InlineData("-a")]
    [InlineData("a-")]
    [InlineData("_a")]
    // Percent-encoding is never decoded.
    [InlineData("%2e%2e/x")]
    [InlineData("a%2Fb")]
    [InlineData("nginx:%2e")]
    // Unicode look-alikes: Cyrillic i, full-width l, one-dot leader for '.'.
    [InlineData("ng\u0456nx")]
    [InlineData("nginx:\uff4catest")]
    [InlineData("docker\u2024io/x")]
    // Whitespace, control characters, NUL, backslash.
    [InlineData("a b")]
    [InlineData(" nginx")]
    [InlineData("nginx\n")]
    [InlineData("nginx\0")]
    [InlineData("a\\b")]
    // Hosts: bad port, empty port, underscore, leading dash, broken IPv6.
    [InlineData("localhost:99999/x")]
    [InlineData("localhost:0/x")]
    [InlineData("localhost:/x")]
    [InlineData("localhost:http/x")]
    [InlineData("exa_mple.com/x")]
    [InlineData("-example.com/x")]
    [InlineData("example..com/x")]
    [InlineData("[::1/x")]
    [InlineData("[zz]:5000/x")]
    [InlineData("[]/x")]
    [InlineData("[::1]x/y")]
    public void TryParse_InvalidReference_ReturnsFalse(string? input)
    {
        Assert.False(Reference.TryParse(input, out var reference));
        Assert.Null(reference);
    }

    [Theory]
    [InlineData(128, true)]
    [InlineData(129, false)]
    public void TryParse_TagLength_BoundedAt128(int length, bool valid)
    {
        Assert.Equal(valid, Reference.TryParse("nginx:" + new string('t', length), out _));
    }

    [Theory]
    [InlineData("registry.example.com/", 234, true)] // 21 + 234 = 255
    [InlineData("registry.example.com/", 235, false)]
    // The bound applies after normalisation: a familiar name gains "docker.io/library/" (18 chars).
    [InlineData("", 237, true)]
    [InlineData("", 238, false)]
    public void TryParse_NameLength_BoundedAt255AfterNormalisation(string prefix, int repositoryLength, bool valid)
    {
        Assert.Equal(valid, Reference.TryParse(prefix + new string('a', repositoryLength), out _));
    }

    [Fact]
    public void TryParse_HugeInput_ReturnsFalse()
    {
        Assert.False(Reference.TryParse(new string('a', 1_000_000) + "!", out _));
    }

    [Theory]
    [InlineData("docker.io", "nginx", null, null, "docker.io/library/nginx:latest")]
    [InlineData("index.docker.io", "library/nginx", "1.27", null, "docker.io/library/nginx:1.27")]
    [InlineData("ghcr.io", "a/b", null, Sha256, "ghcr.io/a/b@" + Sha256)]
    [InlineData("ghcr.io", "a/b", "v1", Sha256, "ghcr.io/a/b:v1@" + Sha256)]
    [InlineData("localhost", "x", "1", null, "localhost/x:1")]
    [InlineData("[::1]:5000", "x", "1", null, "[::1]:5000/x:1")]
    public void Create_ValidParts_NormalisesLikeParse(string registry, string repository, string? tag, string? digest, string expected)
    {
        var reference = Reference.Create(registry, repository, tag, digest is null ? null : Digest.Parse(digest));
        Assert.Equal(expected, reference.ToString());
        Assert.Equal(reference, Reference.Parse(expected));
    }

    [Theory]
    // "myhost/x" would parse back as the Docker Hub namespace "myhost", so it is not a registry.
    [InlineData("myhost", "x", null)]
    [InlineData("", "x", null)]
    [InlineData("ghcr.io", "", null)]
    [InlineData("ghcr.io", "Org/x", null)]
    [InlineData("ghcr.io", "a/../b", null)]
    [InlineData("ghcr.io", "/x", null)]
    [InlineData("ghcr.io", "x", "")]
    [InlineData("ghcr.io", "x", ".bad")]
    [InlineData("ghcr.io/x", "y", null)]
    [InlineData("ghcr.io:abc", "y", null)]
    public void TryCreate_InvalidParts_ReturnsFalse(string registry, string repository, string? tag)
    {
        Assert.False(Reference.TryCreate(registry, repository, tag, null, out _));
        Assert.Throws<ArgumentException>(() => Reference.Create(registry, repository, tag));
    }

    [Fact]
    public void TryCreate_DefaultDigest_ReturnsFalse()
    {
        Assert.False(Reference.TryCreate("ghcr.io", "x", null, default(Digest), out _));
    }

    [Fact]
    public void Parse_Invalid_ThrowsFormatExceptionNamingInput()
    {
        var ex = Assert.Throws<FormatException>(() => Reference.Parse("Nope"));
        Assert.Contains("'Nope'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Equals_SameCanonicalForm_EqualAndSameHash()
    {
        var a = Reference.Parse("nginx");
        var b = Reference.Parse("index.docker.io/library/nginx:latest");
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, Reference.Parse("nginx:1.27"));
    }
}
