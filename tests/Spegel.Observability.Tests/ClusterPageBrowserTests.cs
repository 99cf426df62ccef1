using System.Net;
using Spegel.Observability.Tests.Support;
using Xunit.Abstractions;

namespace Spegel.Observability.Tests;

/// <summary>The cluster page in headless Chromium, opened through a node's registry, against running services.</summary>
public sealed class ClusterPageBrowserTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ClusterPage_ThroughRegistry_ListsNodesTheImageJustPulledAndMirroredRequests()
    {
        await using var cluster = await TestCluster.StartAsync("node-a", "node-b", "node-c");
        var nginx = new MemoryImage("docker.io/library/nginx:1.27", layerBytes: 1024 * 1024);
        var api = new MemoryImage("ghcr.io/acme/api:2.3");
        var a = cluster["node-a"];
        var b = cluster["node-b"];

        // node-a pulls two images from upstream; node-b pulls nginx through its mirror (peer node-a), then holds it;
        // node-b also asks for something nobody has (a miss).
        a.Pull(nginx);
        a.Pull(api);
        await MetricsTests.WaitForPeersAsync(cluster, nginx.Reference.ToString(), 1);
        Assert.Equal(HttpStatusCode.OK, (await b.Registry.Client.GetAsync(nginx.ManifestPath)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await b.Registry.Client.GetAsync(nginx.BlobPath(nginx.ConfigDigest))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await b.Registry.Client.GetAsync(nginx.BlobPath(nginx.LayerDigest))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await b.Registry.Client.GetAsync(new MemoryImage("docker.io/library/absent:1").ManifestPath)).StatusCode);
        b.Pull(nginx);
        await MetricsTests.WaitForPeersAsync(cluster, nginx.Reference.ToString(), 2);

        await using var browser = await Chromium.LaunchAsync();
        var page = new Uri(cluster["node-c"].Registry.Url, "/ui/");
        await browser.NavigateAsync(page);

        await browser.WaitForAsync(
            "['node-a','node-b','node-c'].every(n => document.querySelector(`#nodes tr[data-node=\"${n}\"] .dot.ok`) !== null)",
            "the three nodes listed alive");
        await browser.WaitForAsync("document.querySelector('#images tr[data-image=\"docker.io/library/nginx:1.27\"]') !== null", "the image just pulled");
        await browser.WaitForAsync("document.querySelectorAll('#recent tbody tr').length >= 4", "the recent mirror requests");

        var nginxRow = (await browser.EvaluateAsync("document.querySelector('#images tr[data-image=\"docker.io/library/nginx:1.27\"]').innerText")).GetString()!;
        Assert.Contains("node-a", nginxRow, StringComparison.Ordinal);
        Assert.Contains("node-b", nginxRow, StringComparison.Ordinal);
        Assert.Contains("ghcr.io/acme/api:2.3", (await browser.EvaluateAsync("document.querySelector('#images tbody').innerText")).GetString()!, StringComparison.Ordinal);
        var recent = (await browser.EvaluateAsync("document.querySelector('#recent tbody').innerText")).GetString()!;
        Assert.Contains("node-a", recent, StringComparison.Ordinal);
        Assert.Contains("miss", recent, StringComparison.Ordinal);
        Assert.Equal("75.0 %", (await browser.EvaluateAsync("document.getElementById('hit-ratio').textContent")).GetString());

        // Search by a short reference, as an operator types it.
        await browser.EvaluateAsync("document.getElementById('search-ref').value = 'nginx:1.27'; document.getElementById('search').requestSubmit(); true");
        await browser.WaitForAsync("document.querySelectorAll('#search-bindings tbody tr').length === 2", "the tag's bindings on both nodes");
        var bindings = (await browser.EvaluateAsync("document.querySelector('#search-bindings').innerText")).GetString()!;
        Assert.Contains(nginx.ManifestDigest.ToString()[..19], bindings, StringComparison.Ordinal);

        await browser.WaitForAsync("document.getElementById('live-text').textContent.startsWith('live')", "the live indicator");

        // Refreshed live: one more mirror request (node-b fetches api's layer from node-a), and without navigating
        // again the page shows its row and the new hit ratio (4 of node-b's 5 mirror requests served by the cluster).
        var rowsBefore = (await browser.EvaluateAsync("document.querySelectorAll('#recent tbody tr').length")).GetInt32();
        var apiLayer = api.LayerDigest.ToString();
        await browser.WaitForAsync(
            $"!document.querySelector('#recent tbody').innerHTML.includes('{apiLayer}')",
            "no row for api's layer before it is requested");
        await MetricsTests.WaitForPeersAsync(cluster, apiLayer, 1);
        Assert.Equal(HttpStatusCode.OK, (await b.Registry.Client.GetAsync(api.BlobPath(api.LayerDigest))).StatusCode);
        await browser.WaitForAsync(
            $"document.querySelector('#recent tbody').innerHTML.includes('{apiLayer}') && document.getElementById('hit-ratio').textContent === '80.0 %'",
            "the new request's row and the new hit ratio, without navigating",
            TimeSpan.FromSeconds(20));
        var rowsAfter = (await browser.EvaluateAsync("document.querySelectorAll('#recent tbody tr').length")).GetInt32();
        // node-b's request, and node-a's line for serving it when node-a's registry keeps served requests too.
        Assert.True(rowsAfter > rowsBefore, $"recent rows {rowsBefore} -> {rowsAfter}");
        output.WriteLine($"recent rows {rowsBefore} -> {rowsAfter} without navigating");
        Assert.Equal(page.ToString(), (await browser.EvaluateAsync("location.href")).GetString());
        Assert.True(await browser.EvaluateAsync("document.getElementById('error').hidden") is { ValueKind: System.Text.Json.JsonValueKind.True });
        Assert.Empty(browser.ConsoleErrors);

        var (file, _) = await browser.SaveScreenshotAsync("cluster-page.png");
        output.WriteLine($"screenshot: {file}");
    }
}
