using System.Diagnostics;
using System.Net.Http.Json;
using Spectre.Console;
using Spegel.Core.Routing;
using Spegel.TestRig;

namespace Spegel.Cluster;

/// <summary>
/// <c>./spegel demo</c>: a local upstream registry with a generated image, a 3-node cluster (the same supervisor
/// as <c>cluster up</c>, in <c>.work/demo</c>), a pull on node-1 that must come from the upstream, the resolver
/// listing node-1, the upstream taken down, pulls on node-2 and node-3 that must come from peers. Every claim is
/// checked against what the node registries logged; any step that did not do what it says fails the demo.
/// </summary>
internal static class DemoCommand
{
    private const long LayerSize = 40L * 1024 * 1024;
    private static readonly string[] PeerNodes = ["node-2", "node-3"];
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(3) };

    public static async Task<int> RunAsync(Options options)
    {
        var keep = options.Has("--keep");
        var workdir = options.Workdir("demo");
        var total = Stopwatch.StartNew();
        var failures = new List<string>();
        var reports = new List<PullReport>();
        ClusterInfo? cluster = null;
        UpstreamRegistry? upstream = null;

        // A cluster left by an earlier `demo --keep` is stopped first.
        if (ClusterInfo.TryLoad(workdir) is { } previous)
        {
            AnsiConsole.MarkupLine($"stopping the cluster an earlier demo left in {Markup.Escape(workdir)}");
            await ClusterCommands.StopAsync(previous);
        }

        try
        {
            await AnsiConsole.Status().Spinner(Spinner.Known.Dots).StartAsync("starting", async ctx =>
            {
                void Step(string text) => ctx.Status(Markup.Escape(text));
                void Done(string text) => AnsiConsole.MarkupLine($"[green]✓[/] {text} [grey]({total.Elapsed.TotalSeconds:0.0} s)[/]");
                bool Check(bool ok, string text)
                {
                    if (ok)
                    {
                        Done(text);
                    }
                    else
                    {
                        failures.Add(text);
                        AnsiConsole.MarkupLine($"[red]✗ {text}[/]");
                    }

                    return ok;
                }

                Step("starting a local upstream registry and pushing a generated image");
                upstream = await UpstreamRegistry.StartAsync();
                var images = new TestImages(upstream);
                var image = await images.BuildAsync(TestImageKind.LargeLayer, "demo/app", "v1", CancellationToken.None, LayerSize);
                Done($"upstream registry {upstream.Host} serves [blue]{Markup.Escape(image.Reference)}[/] ({image.NativeBlobs.Count} blobs, {ClusterCommands.Mib(image.TotalSize)})");

                Step("starting 3 nodes (containerd + registry + indexer each) and a resolver");
                cluster = await ClusterCommands.StartSupervisorAsync(workdir, 3, Step);
                Done($"3 nodes and a resolver up in {Markup.Escape(workdir)}");

                Step("pulling on node-1 (nobody has the image yet)");
                var first = await Puller.PullAsync(cluster.Node("node-1"), image.Reference, CancellationToken.None);
                reports.Add(first);
                if (!Check(first.Succeeded && first.Blobs.Count > 0 && first.Blobs.All(b => b.Source == BlobSource.Upstream),
                    $"node-1 pulled in {first.Elapsed.TotalSeconds:0.00} s: its registry answered miss for all {first.Blobs.Count} blobs, containerd went upstream"))
                {
                    AnsiConsole.WriteLine(first.CtrOutput.Trim());
                    return;
                }

                Step("waiting until the resolver lists node-1 for the tag and every blob");
                var listed = await WaitListedAsync(cluster.ResolverUrl, [image.Reference, .. image.NativeBlobs.Select(b => b.Digest.ToString())], "node-1");
                if (!Check(listed, $"resolver lists node-1 for the tag v1 and all {image.NativeBlobs.Count} blobs"))
                {
                    return;
                }

                Step("stopping the upstream registry");
                await upstream.StopAsync();
                var down = !await ProcessTools.IsListeningAsync(upstream.Url);
                if (!Check(down, $"upstream {upstream.Host} is [red]down[/] (connections refused)"))
                {
                    return;
                }

                foreach (var name in PeerNodes)
                {
                    Step($"pulling on {name} with the upstream down");
                    var report = await Puller.PullAsync(cluster.Node(name), image.Reference, CancellationToken.None);
                    reports.Add(report);
                    var layers = report.Layers;
                    if (!Check(report.Succeeded && layers.Count > 0 && report.Blobs.All(b => b.FromPeer),
                        $"{name} pulled in {report.Elapsed.TotalSeconds:0.00} s: all {report.Blobs.Count} blobs served by {Markup.Escape(report.Summary)}"))
                    {
                        AnsiConsole.WriteLine(report.CtrOutput.Trim());
                        return;
                    }
                }
            });
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            failures.Add(ex.Message);
            AnsiConsole.MarkupLine($"[red]✗ {Markup.Escape(ex.Message)}[/]");
        }

        if (reports.Count > 0)
        {
            AnsiConsole.Write(SummaryTable(reports));
        }

        if (upstream is not null)
        {
            await upstream.DisposeAsync();
        }

        if (cluster is not null && keep)
        {
            AnsiConsole.MarkupLine($"kept running (--keep): [blue]./spegel cluster status --workdir {Markup.Escape(workdir)}[/], " +
                $"[blue]./spegel cluster pull node-2 <image> --workdir {Markup.Escape(workdir)}[/]; stop it with [blue]./spegel cluster down --workdir {Markup.Escape(workdir)}[/]");
            AnsiConsole.MarkupLine($"cluster description: {Markup.Escape(ClusterInfo.PathIn(workdir))}; the upstream registry was stopped by the demo and removed");
        }
        else if (cluster is not null)
        {
            var (clean, report) = await ClusterCommands.StopAsync(cluster);
            if (!clean)
            {
                failures.Add(report);
            }

            AnsiConsole.MarkupLine((clean ? "[green]✓[/] cleaned up: " : "[red]✗[/] ") + Markup.Escape(report));
        }

        if (failures.Count > 0)
        {
            AnsiConsole.MarkupLine($"[red]demo FAILED[/] after {total.Elapsed.TotalSeconds:0.0} s: {Markup.Escape(failures[0])}");
            AnsiConsole.MarkupLine($"[grey]logs: {Markup.Escape(Path.Combine(workdir, "logs"))}, {Markup.Escape(Path.Combine(workdir, Supervisor.LogFile))}[/]");
            return 1;
        }

        AnsiConsole.MarkupLine($"[green]demo passed[/] in {total.Elapsed.TotalSeconds:0.0} s: node-2 and node-3 pulled from peers while the upstream was down");
        return 0;
    }

    private static Table SummaryTable(IEnumerable<PullReport> reports)
    {
        var table = new Table().Title("pulls");
        table.AddColumn("node");
        table.AddColumn("image");
        table.AddColumn("source");
        table.AddColumn(new TableColumn("blobs").RightAligned());
        table.AddColumn(new TableColumn("time").RightAligned());
        table.AddColumn(new TableColumn("MiB").RightAligned());
        foreach (var r in reports)
        {
            var source = !r.Succeeded ? "[red]failed[/]" : r.Blobs.All(b => b.FromPeer) ? $"[green]{Markup.Escape(r.Summary)}[/]" : $"[yellow]{Markup.Escape(r.Summary)}[/]";
            table.AddRow(r.Node, Markup.Escape(r.Image), source, r.Blobs.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), $"{r.Elapsed.TotalSeconds:0.00} s", ClusterCommands.Mib(r.Bytes, unit: false));
        }

        return table;
    }

    private static async Task<bool> WaitListedAsync(string resolverUrl, IReadOnlyList<string> keys, string node)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var all = true;
            foreach (var key in keys)
            {
                try
                {
                    var answer = await Http.GetFromJsonAsync(new Uri(new Uri(resolverUrl), PeersRoute.For(key, null)), PeersJsonContext.Default.PeersResponse);
                    all &= answer is not null && answer.Peers.Any(p => p.Node == node);
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException)
                {
                    all = false;
                }

                if (!all)
                {
                    break;
                }
            }

            if (all)
            {
                return true;
            }

            await Task.Delay(200);
        }

        return false;
    }
}
