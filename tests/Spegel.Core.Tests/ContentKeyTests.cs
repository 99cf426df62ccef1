namespace Spegel.Core.Tests;

public class ContentKeyTests
{
    private const string Sha256 = "sha256:5fcf7ef29eb9819794924a97aba79c77c8810292cad53a90cbda7be1bd892d33";

    [Theory]
    [InlineData("nginx", "docker.io/library/nginx:latest")]
    [InlineData("index.docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27")]
    [InlineData("localhost:5000/a/b:v1", "localhost:5000/a/b:v1")]
    [InlineData("nginx:1.27@" + Sha256, Sha256)]
    [InlineData("ghcr.io/x@" + Sha256, Sha256)]
    public void ForLookup_Reference_DigestWinsOverTag(string reference, string expected)
    {
        Assert.Equal(expected, ContentKey.ForLookup(Reference.Parse(reference)));
    }

    [Theory]
    [InlineData("nginx:1.27", "docker.io/library/nginx:1.27")]
    [InlineData("nginx:1.27@" + Sha256, "docker.io/library/nginx:1.27")]
    public void ForTag_TaggedReference_DropsDigest(string reference, string expected)
    {
        Assert.Equal(expected, ContentKey.ForTag(Reference.Parse(reference)));
    }

    [Fact]
    public void ForTag_DigestOnlyReference_Throws()
    {
        Assert.Throws<ArgumentException>(() => ContentKey.ForTag(Reference.Parse("nginx@" + Sha256)));
    }

    [Fact]
    public void ForDigest_Digest_IsDigestString()
    {
        Assert.Equal(Sha256, ContentKey.ForDigest(Digest.Parse(Sha256)));
        Assert.Throws<ArgumentException>(() => ContentKey.ForDigest(default));
    }
}
