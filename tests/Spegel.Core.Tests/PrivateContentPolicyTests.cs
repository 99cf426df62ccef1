using Spegel.Core.Content;

namespace Spegel.Core.Tests;

public class PrivateContentPolicyTests
{
    private static readonly PrivateContentPolicy Policy = new([@"^ghcr\.io/acme/", @"^registry\.corp\.example:5000/"]);

    [Theory]
    [InlineData("containerd.io/distribution.source.ghcr.io", "acme/app", true)]
    [InlineData("containerd.io/distribution.source.ghcr.io", "acme/app,acme/other", true)]
    [InlineData("containerd.io/distribution.source.ghcr.io", "acme/app,public/base", false)] // shared with a public image
    [InlineData("containerd.io/distribution.source.docker.io", "library/nginx", false)]
    [InlineData("containerd.io/distribution.source.registry.corp.example:5000", "team/svc", true)]
    [InlineData("containerd.io/gc.ref.content.l.0", "sha256:abc", false)] // no source label: cannot tell, so shared
    public void IsPrivate_Labels_OnlyWhenEverySourceMatches(string key, string value, bool expected)
    {
        Assert.Equal(expected, Policy.IsPrivate(new Dictionary<string, string> { [key] = value }));
    }

    [Fact]
    public void IsPrivate_SourcesFromTwoRegistriesOnePublic_IsShared()
    {
        var labels = new Dictionary<string, string>
        {
            ["containerd.io/distribution.source.ghcr.io"] = "acme/app",
            ["containerd.io/distribution.source.docker.io"] = "library/base",
        };
        Assert.False(Policy.IsPrivate(labels));
    }

    [Theory]
    [InlineData("ghcr.io/acme/app:1", true)]
    [InlineData("ghcr.io/other/app:1", false)]
    [InlineData("docker.io/library/nginx:1.27", false)]
    public void IsPrivate_Reference_MatchesRegistryAndRepository(string reference, bool expected)
    {
        Assert.Equal(expected, Policy.IsPrivate(Reference.Parse(reference)));
    }

    [Fact]
    public void None_IsNeverPrivate()
    {
        Assert.False(PrivateContentPolicy.None.IsPrivate(new Dictionary<string, string> { ["containerd.io/distribution.source.ghcr.io"] = "acme/app" }));
    }
}
