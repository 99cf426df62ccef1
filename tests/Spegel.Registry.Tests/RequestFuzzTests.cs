using CsCheck;

namespace Spegel.Registry.Tests;

/// <summary>Thousands of generated request targets against the real Kestrel pipeline: never a 5xx, never a hang.</summary>
public class RequestFuzzTests
{
    private static readonly Gen<string> Segment = Gen.OneOf(
        Gen.OneOf("library", "app", "manifests", "blobs", "tags", "list", "uploads", "..", ".", "%2e%2e", "%2F", "%00", "%ZZ", "",
            "sha256:" + new string('a', 64), "sha256:abc", "sha512:" + new string('b', 128), "latest", "1.0", "-x", "A", new string('t', 129)),
        Gen.Char['!', '~'].Array[0, 20].Select(c => new string(c).Replace(" ", "%20", StringComparison.Ordinal)));

    private static readonly Gen<string> Target = Gen.Select(
        Segment.Array[0, 8],
        Gen.OneOf("", "?ns=docker.io", "?ns=", "?ns=a&ns=b", "?ns=%ff", "?ns=docker.io/x", "?x=1"),
        (segments, query) => "/v2/" + string.Join('/', segments) + query);

    [Fact]
    public async Task AnyTarget_GetOrHead_NeverAnswers5xx()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        var seen = new Dictionary<int, int>();

        // Sampled up front: the requests themselves run one after another against one service instance.
        var targets = Gen.Select(Target, Gen.OneOf("GET", "HEAD", "DELETE")).Array[2_000].Single();
        foreach (var (target, method) in targets)
        {
            var (status, _, _) = await RawHttp.SendAsync(app.Url, method, target);
            Assert.True(status < 500, $"{method} {target} answered {status}");
            seen[status] = seen.GetValueOrDefault(status) + 1;
        }

        var (after, _, _) = await RawHttp.SendAsync(app.Url, "GET", $"/v2/library/app/blobs/{content.LayerDigest}");
        Assert.Equal(200, after);
        Assert.True(seen.Count > 2, "the generator should reach several different answers: " + string.Join(", ", seen));
    }
}
