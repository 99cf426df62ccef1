using System.Net.Http.Headers;
using System.Text;
using CsCheck;
using Spegel.Core.Events;

namespace Spegel.Resolver.Tests;

/// <summary>Generated CloudEvents, broken and not, posted to the subscription route: never a 5xx, never a retry storm.</summary>
public class EventFuzzTests
{
    private static readonly Gen<string> DataPiece = Gen.OneOf(
        "{", "}", "\"kind\":", "\"advertised\"", "\"withdrawn\"", "\"snapshot\"", "\"heartbeat\"", "\"x\"", ",", ":", "null", "[", "]",
        "\"version\":1", "\"node\":\"n-1\"", "\"node\":\"../etc\"", "\"address\":\"http://127.0.0.1:5000\"", "\"address\":\"file:///etc\"",
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
        foreach (var body in Envelope.Array[1_500].Single())
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
}
