using System.Net;
using System.Text.Json;
using Spegel.Core;
using Spegel.Observability.Tests.Support;

namespace Spegel.Observability.Tests;

/// <summary>The log lines operators grep for, as the services write them (Serilog, the operators' JSON formatter).</summary>
public sealed class LogTests
{
    [Fact]
    public async Task PeerServedBlob_RequestLine_CarriesPeerSourceBytesAndLatency_OncePerRequest()
    {
        await using var cluster = await TestCluster.StartAsync("node-a", "node-b");
        var a = cluster["node-a"];
        var b = cluster["node-b"];
        // Larger than the mirror's 128 KiB chunk: many chunks, still one line.
        var image = new MemoryImage("docker.io/library/logged:1.0", layerBytes: 3 * 1024 * 1024 + 17);
        a.Pull(image);
        await MetricsTests.WaitForPeersAsync(cluster, image.LayerDigest.ToString(), 1);

        using (var response = await b.Registry.Client.GetAsync(image.BlobPath(image.LayerDigest)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(image.Layer.Length, (await response.Content.ReadAsByteArrayAsync()).Length);
        }

        var line = await SingleRequestLineAsync(b.Registry, image.LayerDigest);
        Assert.Equal(200, line.GetProperty("status").GetInt32());
        Assert.Equal("GET", line.GetProperty("method").GetString());
        Assert.Equal("blob", line.GetProperty("handler").GetString());
        Assert.Equal("node-a", line.GetProperty("source").GetString());
        Assert.Equal(image.Layer.Length, line.GetProperty("bytes").GetInt64());
        Assert.Matches(@"^\d+(\.\d+)?ms$", line.GetProperty("latency").GetString()!);
        Assert.Equal("127.0.0.1", line.GetProperty("ip").GetString());

        // The raw line carries the seed's field run, in the seed's order (operator-guide: "When the cache is present").
        var raw = Assert.Single(b.Registry.Log.Lines, l => l.Contains(image.LayerDigest.ToString(), StringComparison.Ordinal));
        Assert.Matches("\"status\":200,\"method\":\"GET\",\"latency\":\"\\d+(\\.\\d+)?ms\",\"ip\":\"[^\"]+\",\"handler\":\"blob\"", raw);

        // The peer's side: served locally, to a peer; and no line on either side per chunk.
        var served = await SingleRequestLineAsync(a.Registry, image.LayerDigest);
        Assert.Equal("local", served.GetProperty("source").GetString());
        Assert.Equal(image.Layer.Length, served.GetProperty("bytes").GetInt64());
        Assert.Single(b.Registry.Log.Lines, l => l.Contains(image.LayerDigest.ToString(), StringComparison.Ordinal));
        Assert.Single(a.Registry.Log.Lines, l => l.Contains(image.LayerDigest.ToString(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task MissAndIndexing_LinesOperatorsGrepFor_AreWritten()
    {
        await using var cluster = await TestCluster.StartAsync("node-a");
        var node = cluster["node-a"];
        var image = new MemoryImage("docker.io/library/grep:1.0");
        var absent = Digest.ComputeSha256([42]);

        Assert.Equal(HttpStatusCode.NotFound, (await node.Registry.Client.GetAsync(image.BlobPath(absent))).StatusCode);
        node.Pull(image);

        var miss = await Eventually.GetAsync(() => Task.FromResult(node.Registry.Log.WithMessage("mirror miss")), l => l.Count > 0, "the miss line");
        Assert.Equal($"mirror with image component {absent} could not be found", Assert.Single(miss).GetProperty("err").GetString());
        var request = await SingleRequestLineAsync(node.Registry, absent);
        Assert.Equal("miss", request.GetProperty("source").GetString());
        Assert.Equal(404, request.GetProperty("status").GetInt32());

        var created = await Eventually.GetAsync(
            () => Task.FromResult(node.Indexer.Log.WithMessage("OCI event")),
            l => l.Count(e => e.GetProperty("key").GetString() == image.LayerDigest.ToString()) == 1,
            "the OCI event line of the layer");
        Assert.Equal("CREATE", created.Single(e => e.GetProperty("key").GetString() == image.LayerDigest.ToString()).GetProperty("type").GetString());
        Assert.Contains(node.Indexer.Log.Lines, l => l.StartsWith("{\"time\":", StringComparison.Ordinal)
            && l.Contains($"\"msg\":\"OCI event\",\"key\":\"{image.LayerDigest}\",\"type\":\"CREATE\"", StringComparison.Ordinal));

        node.Watcher.Delete(image.Reference.ToString());
        await Eventually.GetAsync(
            () => Task.FromResult(node.Indexer.Log.WithMessage("OCI event")),
            l => l.Any(e => e.GetProperty("key").GetString() == image.LayerDigest.ToString() && e.GetProperty("type").GetString() == "DELETE"),
            "the DELETE line of the layer");
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("Information", true)]
    [InlineData("Warning", false)]
    public async Task MinimumLevel_Configured_DecidesWhetherRequestLineIsWritten(string? level, bool written)
    {
        var settings = new Dictionary<string, string?> { ["Spegel:Node:Name"] = "node-l" };
        if (level is not null)
        {
            settings["Serilog:MinimumLevel:Default"] = level;
        }

        await using var registry = await ServiceHost.StartAsync("registry", settings);
        Assert.Equal(HttpStatusCode.OK, (await registry.Client.GetAsync("/v2/")).StatusCode);
        // The host's own stop line is written after the request line; once it is there, the request line was decided.
        await registry.Client.GetAsync("/healthz");

        if (written)
        {
            await Eventually.GetAsync(
                () => Task.FromResult(registry.Log.WithMessage("request")),
                lines => lines.Any(l => l.GetProperty("path").GetString() == "/v2/" && l.GetProperty("handler").GetString() == "v2"),
                "the request line of GET /v2/");
        }
        else
        {
            Assert.Empty(registry.Log.WithMessage("request"));
            Assert.DoesNotContain(registry.Log.Entries, e => e.GetProperty("level").GetString() == "info");
        }
    }

    private static async Task<JsonElement> SingleRequestLineAsync(ServiceHost registry, Digest digest)
    {
        var lines = await Eventually.GetAsync(
            () => Task.FromResult(registry.Log.WithMessage("request").Where(l => l.GetProperty("path").GetString()!.EndsWith(digest.ToString(), StringComparison.Ordinal)).ToList()),
            l => l.Count == 1,
            $"one request line for {digest}");
        return lines[0];
    }
}
