using System.Text;
using Spegel.Core.Events;
using Spegel.Resolver.Events;
using Spegel.Resolver.Lookup;
using static Spegel.Resolver.Tests.TestEvents;

namespace Spegel.Resolver.Tests;

public sealed class ContentEventTranslatorTests
{
    public static TheoryData<string, ContentEvent> InvalidEvents => new()
    {
        { "version", Advertised("node-a", 1, [Digest("x")]) with { Version = 2 } },
        { "node name", Advertised("node|a", 1, [Digest("x")]) },
        { "node name", Advertised("", 1, [Digest("x")]) },
        { "address", Advertised("node-a", 1, [Digest("x")]) with { Address = "not a url" } },
        { "address", Advertised("node-a", 1, [Digest("x")]) with { Address = "ftp://node-a/" } },
        { "negative", Advertised("node-a", -1, [Digest("x")]) },
        { "not a digest", Advertised("node-a", 1, ["sha256:short"]) },
        { "not a tagged image reference", Advertised("node-a", 1, [], [new TagBinding("UPPER/Case:tag", Digest("x"))]) },
        { "not a digest", Advertised("node-a", 1, [], [new TagBinding("nginx:1", "latest")]) },
        { "not a tagged image reference", Withdrawn("node-a", 1, [], [Digest("x")]) },
        { "part count", Snapshot("node-a", 1, 1, 1, 0, []) },
        { "snapshot part", Snapshot("node-a", 1, 1, 3, 2, []) },
        { "snapshot part", Snapshot("node-a", 1, 1, 0, 2, []) },
        { "snapshot id", Snapshot("node-a", 1, 5, 1, 1, []) },
        { "interval", Heartbeat("node-a", 1) with { Interval = TimeSpan.FromSeconds(-1) } },
    };

    [Theory]
    [MemberData(nameof(InvalidEvents))]
    public void TryTranslate_InvalidEvent_FailsWithReason(string reason, ContentEvent contentEvent)
    {
        Assert.False(ContentEventTranslator.TryTranslate(contentEvent, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryTranslate_Advertised_NormalisesKeys()
    {
        var digest = Digest("x");
        Assert.True(ContentEventTranslator.TryTranslate(Advertised("node-a", 3, [digest], [new TagBinding("nginx:1.27", digest)]), out var command, out _));

        var advertise = Assert.IsType<AdvertiseContent>(command);
        Assert.Equal(new EventStamp(Epoch, 3), advertise.Node.Stamp);
        Assert.Equal([digest], advertise.Digests);
        Assert.Equal("docker.io/library/nginx:1.27", Assert.Single(advertise.Tags).TagKey);
    }

    [Theory]
    [InlineData("{\"kind\":\"exploded\",\"node\":\"a\"}")]
    [InlineData("{\"node\":\"a\",\"address\":\"http://a\",\"epoch\":1,\"sequence\":1,\"timestamp\":\"2025-01-01T00:00:00Z\"}")]
    [InlineData("{\"kind\":\"advertised\",\"node\":\"a\"}")]
    [InlineData("not json")]
    [InlineData("")]
    public async Task DispatchAsync_UnreadableBody_Drops(string body)
    {
        using var resolver = new ResolverHarness();
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(body));

        var result = await resolver.Dispatcher.DispatchAsync(stream, CancellationToken.None);

        Assert.True(result.Dropped);
    }

    [Fact]
    public async Task DispatchAsync_KindNotFirst_IsRead()
    {
        using var resolver = new ResolverHarness();
        var digest = Digest("x");
        var body = $$"""{"version":1,"node":"node-a","address":"http://10.0.0.1:5000","epoch":1,"sequence":1,"timestamp":"2025-01-01T00:00:00Z","digests":["{{digest}}"],"kind":"advertised"}""";
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(body));

        var result = await resolver.Dispatcher.DispatchAsync(stream, CancellationToken.None);

        Assert.False(result.Dropped, result.DropReason);
        Assert.Equal(EventOutcome.Applied, result.Outcome);
        Assert.Equal(["node-a"], await resolver.PeersAsync(digest));
    }

    [Theory]
    [InlineData("sha256:0000000000000000000000000000000000000000000000000000000000000000", "sha256:0000000000000000000000000000000000000000000000000000000000000000", false)]
    [InlineData("docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27", true)]
    [InlineData("nginx", "docker.io/library/nginx:latest", true)]
    [InlineData("ghcr.io/org/app:v1@sha256:1111111111111111111111111111111111111111111111111111111111111111", "sha256:1111111111111111111111111111111111111111111111111111111111111111", false)]
    [InlineData("localhost:5000/team/app:dev", "localhost:5000/team/app:dev", true)]
    public void LookupKey_Valid_Normalises(string text, string expected, bool isTag)
    {
        Assert.True(LookupKey.TryParse(text, out var key, out _));
        Assert.Equal(new LookupKey(expected, isTag), key);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("sha256:abc")]
    [InlineData("Not/A/Valid:Reference!")]
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000")]
    public void LookupKey_Invalid_ExplainsWhat(string? text)
    {
        Assert.False(LookupKey.TryParse(text, out _, out var error));
        Assert.Contains("digest", error, StringComparison.Ordinal);
    }
}
