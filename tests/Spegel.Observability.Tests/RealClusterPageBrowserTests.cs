using System.Diagnostics;
using System.Text.Json;
using Spegel.Observability.Tests.Support;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.Observability.Tests;

/// <summary>
/// The cluster page in headless Chromium against real processes and a real pull: the built services run as
/// <c>dotnet Spegel.*.dll</c>, each node a containerd of its own (the same cluster as
/// <see cref="RealProcessMetricsTests"/>). <see cref="ClusterPageBrowserTests"/> checks the page's details against
/// in-memory content; this one checks that what containerd really pulled, through the mirror, reaches the page.
/// </summary>
public sealed class RealClusterPageBrowserTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ClusterPage_RealProcessesAfterARealPull_ListsBothNodesAliveAndTheImageOnBoth()
    {
        var clock = Stopwatch.StartNew();
        await using var upstream = await UpstreamRegistry.StartAsync();
        var image = await new TestImages(upstream).SingleLayerAsync("observability/paged", "v1");
        await using var cluster = await RealCluster.StartAsync("obs-page", upstream);
        var (resolver, node1, node2) = (cluster.Resolver, cluster.Node1, cluster.Node2);
        string Describe() => cluster.Describe();
        var started = clock.Elapsed;

        // node-1 pulls from the upstream through its registry (a miss); once it advertises the layer, node-2 pulls the
        // same image through its registry, which streams it from node-1.
        await cluster.PullOnNode1Async(image);
        var layer = image.NativeBlobs[^1];
        var second = await node2.Containerd.PullAsync(image.Reference, node2.HostsDirectory);
        Assert.True(second.Succeeded, $"node-2: {second}\n{Describe()}");
        var pulled = clock.Elapsed;

        await using var browser = await Chromium.LaunchAsync();
        var page = new Uri(node2.Registry.BaseUri, "/ui/");
        await browser.NavigateAsync(page);
        var opened = clock.Elapsed;

        await browser.WaitForAsync(
            "['node-1','node-2'].every(n => document.querySelector(`#nodes tr[data-node=\"${n}\"] .dot.ok`) !== null)",
            "node-1 and node-2 listed alive",
            TimeSpan.FromSeconds(30));
        var nodesShown = clock.Elapsed;

        // The reference as the indexers advertised it (upstream host, repository, tag), held by both nodes, both alive.
        var row = $"[...document.querySelectorAll('#images tbody tr')].find(r => r.dataset.image === {JsonSerializer.Serialize(image.Reference)})";
        await browser.WaitForAsync(
            $"(() => {{ const row = {row}; return !!row && ['node-1','node-2'].every(n => [...row.querySelectorAll('.chip')].some(c => c.textContent === n && !c.classList.contains('dead'))); }})()",
            $"{image.Reference} held by node-1 and node-2",
            TimeSpan.FromSeconds(30));
        var imageShown = clock.Elapsed;

        var imageRow = (await browser.EvaluateAsync($"{row}.innerText")).GetString()!;
        output.WriteLine($"image row: {imageRow.ReplaceLineEndings(" | ")}");
        Assert.Contains($"{image.Repository}:{image.Tag}", imageRow, StringComparison.Ordinal);
        Assert.Contains(image.Digest.ToString()[..19], imageRow, StringComparison.Ordinal);

        // node-2's pull went through its mirror: the recent requests show node-2's requests served by node-1.
        await browser.WaitForAsync(
            "[...document.querySelectorAll('#recent tbody tr')].some(r => r.cells.length > 4 && r.cells[1].textContent === 'node-2' && r.cells[4].textContent === 'node-1')",
            "a request of node-2 served by node-1",
            TimeSpan.FromSeconds(30));
        Assert.True(await browser.EvaluateAsync("document.getElementById('error').hidden") is { ValueKind: JsonValueKind.True }, "the page shows an error");
        Assert.Equal(page.ToString(), (await browser.EvaluateAsync("location.href")).GetString());
        Assert.Empty(browser.ConsoleErrors);

        var (file, bytes) = await browser.SaveScreenshotAsync("real-cluster-page.png");

        output.WriteLine($"image {image.Reference}: {image.NativeBlobs.Count} blobs, layer {layer.Size} bytes");
        output.WriteLine($"cluster started {started.TotalSeconds:F1} s; both pulls done {(pulled - started).TotalSeconds:F1} s later");
        output.WriteLine($"page opened {(opened - pulled).TotalSeconds:F1} s after the pulls; nodes alive after {(nodesShown - opened).TotalSeconds:F1} s, image on both after {(imageShown - opened).TotalSeconds:F1} s");
        output.WriteLine($"screenshot: {file} ({bytes} bytes)");
    }
}
