using System.Diagnostics;
using CsCheck;
using Xunit.Abstractions;

namespace Spegel.Registry.Tests;

/// <summary>Thousands of generated request targets against the real Kestrel pipeline: never a 5xx, never a hang.</summary>
public class RequestFuzzTests(ITestOutputHelper output)
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
        var clock = Stopwatch.StartNew();

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
        output.WriteLine($"2,000 generated targets in {clock.Elapsed.TotalSeconds:0.0} s: {string.Join(", ", seen)}");
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(3), $"took {clock.Elapsed}: a request hung");
    }

    // Range headers as clients and attackers write them: valid, reversed, past the end, overflowing, multiple, junk.
    private static readonly Gen<string> RangeSpec = Gen.OneOf(
        Gen.Select(Gen.Long[-5, 1_100_000], Gen.Long[-5, 1_100_000], (a, b) => $"{a}-{b}"),
        Gen.Long[0, 2_000_000].Select(a => $"{a}-"),
        Gen.Long[0, 2_000_000].Select(a => $"-{a}"),
        Gen.OneOf("0-", "-0", "-", "", "99999999999999999999-", "0-99999999999999999999", "a-b", " 1 - 2 ", "1-2-3"));

    private static readonly Gen<string> RangeHeader = Gen.Select(
        Gen.OneOf("bytes=", "bytes =", "BYTES=", "items=", "bytes", ""),
        RangeSpec.Array[1, 4],
        (unit, specs) => unit + string.Join(',', specs));

    [Fact]
    public async Task AnyRangeHeader_OnALocalBlob_NeverAnswers5xx_And206IsTheRightSlice()
    {
        var content = new TestContent();
        await using var app = await RegistryApp.StartAsync(content.Store);
        var seen = new Dictionary<int, int>();
        var clock = Stopwatch.StartNew();
        foreach (var range in RangeHeader.Array[1_000].Single())
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/library/app/blobs/{content.LayerDigest}");
            request.Headers.TryAddWithoutValidation("Range", range);
            using var response = await app.Client.SendAsync(request);
            var status = (int)response.StatusCode;
            Assert.True(status is 200 or 206 or 416, $"Range: {range} answered {status}");
            seen[status] = seen.GetValueOrDefault(status) + 1;
            if (status == 206 && response.Content.Headers.ContentRange is { From: { } from, To: { } to })
            {
                Assert.Equal(content.Layer[(int)from..(int)(to + 1)], await response.Content.ReadAsByteArrayAsync());
            }
        }

        output.WriteLine($"1,000 generated Range headers in {clock.Elapsed.TotalSeconds:0.0} s: {string.Join(", ", seen)}");
        Assert.True(seen.Count == 3, "the generator should reach 200, 206 and 416: " + string.Join(", ", seen));
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), $"took {clock.Elapsed}");
    }
}
