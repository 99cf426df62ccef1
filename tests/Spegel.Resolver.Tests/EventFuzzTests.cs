using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CsCheck;
using Spegel.Core.Events;
using Spegel.Dapr;
using Xunit.Abstractions;

namespace Spegel.Resolver.Tests;

/// <summary>Generated CloudEvents, broken and not, posted to the subscription route: never a 5xx, never a retry storm.</summary>
public class EventFuzzTests(ITestOutputHelper output)
{
    private static readonly Gen<string> DataPiece = Gen.OneOf(
        "{", "}", "\"kind\":", "\"advertised\"", "\"withdrawn\"", "\"snapshot\"", "\"heartbeat\"", "\"x\"", ",", ":", "null", "[", "]",
        "\"version\":1", "\"node\":\"n-1\"", "\"node\":\"../etc\"", "\"address\":\"http://127.0.0.1:5000\"", "\"address\":\"file:///etc\"",
        "\"address\":\"http://169.254.169.254/\"", "\"address\":\"http://evil.example:80\"", "\"address\":\"http://[fe80::1%25eth0]:5000\"",
        "\"address\":\"http://[::ffff:10.0.0.1]:5000\"", "\"address\":\"http://10.1:5000\"", "\"address\":\"http://[\"", "\"address\":\"\\u0000\"",
        "\"epoch\":1", "\"sequence\":-1", "\"sequence\":9223372036854775807", "\"timestamp\":\"2026-01-01T00:00:00Z\"",
        "\"digests\":[\"sha256:" + new string('a', 64) + "\"]", "\"digests\":[\"sha256:zz\"]", "\"tags\":[{\"reference\":\"nginx:1\",\"digest\":\"x\"}]",
        "\"part\":0", "\"partCount\":99999", "\"snapshotId\":1", "\"interval\":\"00:00:03\"");

    private static readonly Gen<string> Data = Gen.OneOf(
        DataPiece.Array[0, 25].Select(p => "{" + string.Join(',', p) + "}"),
        DataPiece.Array[0, 25].Select(string.Concat));

    private static readonly Gen<string> Envelope = Gen.Select(Data, Gen.OneOf("application/json", "text/plain", ""), Gen.Bool, (data, contentType, wrapped) =>
        wrapped
            ? $"{{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"fuzz\",\"type\":\"t\",\"datacontenttype\":\"{contentType}\",\"data\":{data}}}"
            : data);

    [Fact]
    public async Task PostAnyEvent_NeverAnswers5xxAndServiceKeepsWorking()
    {
        await using var host = await ResolverTestHost.StartAsync();
        var statuses = new Dictionary<string, int>();
        foreach (var body in Envelope.Array[3_000].Single())
        {
            using var content = new StringContent(body, Encoding.UTF8);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/cloudevents+json");
            using var response = await host.Client.PostAsync(new Uri(ContentTopics.SubscriptionRoute, UriKind.Relative), content);
            Assert.True((int)response.StatusCode < 500, $"{(int)response.StatusCode} for {body}");
            var text = await response.Content.ReadAsStringAsync();
            var key = $"{(int)response.StatusCode} {(text.Contains("RETRY", StringComparison.Ordinal) ? "RETRY" : text.Contains("DROP", StringComparison.Ordinal) ? "DROP" : "OK")}";
            statuses[key] = statuses.GetValueOrDefault(key) + 1;
        }

        Assert.DoesNotContain(statuses.Keys, k => k.EndsWith("RETRY", StringComparison.Ordinal));
        Assert.Contains(statuses.Keys, k => k.EndsWith("DROP", StringComparison.Ordinal));
        using var peers = await host.Client.GetAsync(new Uri("/v1/peers?key=sha256:" + new string('a', 64), UriKind.Relative));
        Assert.True(peers.IsSuccessStatusCode);
    }

    // Hosts a forger might try, and ones an honest node sends: IP literals of every form, names, reserved ranges, junk.
    private static readonly Gen<string> Host = Gen.OneOf(
        Gen.Byte.Array[4].Select(b => string.Join('.', b)),
        Gen.OneOf(Gen.Const("10"), Gen.Const("169.254"), Gen.Const("127"), Gen.Const("0")).Select(Gen.Byte.Array[3], (p, b) => p + "." + string.Join('.', b)).Select(h => h.Split('.').Length > 4 ? string.Join('.', h.Split('.')[..4]) : h),
        Gen.UShort.Array[8].Select(w => "[" + string.Join(':', w.Select(x => x.ToString("x", System.Globalization.CultureInfo.InvariantCulture))) + "]"),
        Gen.OneOf("[::1]", "[::]", "[fe80::1]", "[fe80::1%25eth0]", "[::ffff:169.254.169.254]", "[::ffff:10.0.0.1]", "[fd00::1]", "[ff02::1]", "localhost",
            "metadata.google.internal", "node-a", "10.1", "0x7f.1", "2130706433", "1.2.3.4.5", "[", "", "%31%30.0.0.1"),
        Gen.Char['!', '~'].Array[1, 15].Select(c => new string(c)));

    private static readonly Gen<string> Address = Gen.Select(Gen.OneOf("http://", "https://", "ftp://", "", "http:/"), Host, Gen.OneOf("", ":5000", ":0", ":99999", "/x", "?a=b"), (s, h, t) => s + h + t);

    [Fact]
    public async Task PostEvent_AnyAddress_SucceedsOnlyForAnIpOutsideTheReservedRanges()
    {
        await using var host = await ResolverTestHost.StartAsync();
        var clock = Stopwatch.StartNew();
        var seen = new Dictionary<string, int>();
        var layer = "sha256:" + new string('a', 64);
        var seq = 0;
        foreach (var address in Address.Array[2_000].Single())
        {
            var e = new NodeHeartbeat { Node = "fuzz", Address = address, Epoch = 1, Sequence = ++seq, Timestamp = DateTimeOffset.UnixEpoch, Interval = TimeSpan.FromSeconds(5) };
            var data = Encoding.UTF8.GetString(DaprContentEventPublisher.Serialize(e));
            using var content = new StringContent($$"""{"specversion":"1.0","id":"f","source":"fuzz","type":"t","datacontenttype":"application/json","data":{{data}}}""", Encoding.UTF8);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/cloudevents+json");
            using var response = await host.Client.PostAsync(new Uri(ContentTopics.SubscriptionRoute, UriKind.Relative), content);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} for {address}");
            var status = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString()!;
            seen[status] = seen.GetValueOrDefault(status) + 1;
            if (status == "SUCCESS")
            {
                // Accepted: an http(s) URL whose host is an IP literal outside link-local, unspecified and multicast.
                var uri = new Uri(address);
                Assert.True(IPAddress.TryParse(uri.DnsSafeHost, out var ip), $"accepted a host name: {address}");
                ip = ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;
                Assert.False(ip.IsIPv6LinkLocal || ip.IsIPv6Multicast || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any), $"accepted {address}");
                Assert.False(ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && ip.GetAddressBytes() is [169, 254, ..] or [>= 224 and < 240, ..], $"accepted {address}");
            }
            else
            {
                Assert.Equal("DROP", status);
            }
        }

        output.WriteLine($"2,000 generated addresses in {clock.Elapsed.TotalSeconds:0.0} s: {string.Join(", ", seen)}");
        Assert.True(seen.GetValueOrDefault("SUCCESS") > 100 && seen.GetValueOrDefault("DROP") > 100, string.Join(", ", seen));
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), $"took {clock.Elapsed}");
        using var peers = await host.Client.GetAsync(new Uri("/v1/peers?key=" + layer, UriKind.Relative));
        Assert.True(peers.IsSuccessStatusCode);
    }
}
