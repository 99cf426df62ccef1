using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Spegel.Core;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.EndToEnd.Tests.Support;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.EndToEnd.Tests;

/// <summary>
/// Issue 10: SIGTERM on a registry in the middle of a transfer lets the transfer finish (Kestrel drains in-flight
/// requests within the host's 20 s shutdown timeout), and the node is withdrawn: its indexer stops heartbeating once
/// the registry no longer answers (<c>Spegel:Indexer:ProbeRegistry</c>), so the resolver leaves it out within the
/// node timeout; it comes back once the registry is restarted.
/// </summary>
public sealed class GracefulShutdownTests(ITestOutputHelper output)
{
    private const long SigTermAt = 24L * 1024 * 1024;

    /// <summary>Reading rates of the client: slow before the SIGTERM (so it lands mid-transfer), faster after.</summary>
    private const long SlowBytesPerSecond = 12L * 1024 * 1024;
    private const long FastBytesPerSecond = 40L * 1024 * 1024;

    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(60) };

    [Theory]
    [InlineData(ClusterTransport.Standalone)]
    [InlineData(ClusterTransport.Dapr)]
    public async Task SigTerm_RegistryMidTransfer_TransferCompletesAndNodeWithdrawnThenBack(ClusterTransport transport)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var building = new TestImages(upstream).LargeLayerAsync();
        await using var cluster = await LocalCluster.StartAsync(upstream, new LocalClusterOptions { Nodes = 2, Transport = transport });
        var image = await building;
        var layer = image.NativeBlobs.MaxBy(b => b.Size)!;
        var (holder, reader) = (cluster.Node(1), cluster.Node(2));
        (await holder.PullFromUpstreamAsync(image.Reference)).EnsureSuccess();
        var keys = Content.Keys(image);
        await Discovery.WaitAsync(cluster.ResolverApi, holder.Name, keys, listed: true, TimeSpan.FromSeconds(5), cluster.Describe);

        // Node 1 is the only source: the upstream is down and node 2 holds nothing, so the bytes can only come from
        // node 1's registry, which must keep sending after its SIGTERM.
        await upstream.StopAsync();
        var blob = new Uri(reader.Registry.BaseUri, $"/v2/{image.Repository}/blobs/{layer.Digest}?ns={image.Registry}");
        using var response = await Http.GetAsync(blob, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var body = await response.Content.ReadAsStreamAsync();

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        var clock = Stopwatch.StartNew();
        long read = 0;
        Stopwatch? sinceTerm = null;
        Task<TimeSpan>? withdrawn = null;
        try
        {
            int n;
            while ((n = await body.ReadAsync(buffer.AsMemory(0, 64 * 1024))) > 0)
            {
                hash.AppendData(buffer, 0, n);
                read += n;
                if (sinceTerm is null && read >= SigTermAt)
                {
                    holder.Registry.Signal(15);
                    sinceTerm = Stopwatch.StartNew();
                    withdrawn = Discovery.WaitAsync(cluster.ResolverApi, holder.Name, keys, listed: false, cluster.Options.NodeTimeout + TimeSpan.FromSeconds(10), cluster.Describe);
                    clock.Restart();
                    read = 0;
                }

                // Throttle: the reader is the slow end, so node 1's registry holds most of the layer still to send.
                var rate = sinceTerm is null ? SlowBytesPerSecond : FastBytesPerSecond;
                var due = TimeSpan.FromSeconds((double)read / rate);
                if (due > clock.Elapsed)
                {
                    await Task.Delay(due - clock.Elapsed);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        Assert.True(sinceTerm is not null, "the layer ended before the registry could be sent SIGTERM");
        var afterTerm = sinceTerm.Elapsed;
        Assert.Equal(layer.Digest, Digest.FromSha256Bytes(hash.GetCurrentHash()));
        output.WriteLine(Invariant($"[{transport}] {layer.Size >> 20} MiB layer: SIGTERM after {SigTermAt >> 20} MiB read; the remaining {read >> 20} MiB arrived in {afterTerm.TotalMilliseconds:0} ms, digest correct"));

        var exitCode = await holder.Registry.WaitForExitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine(Invariant($"[{transport}] node 1's registry exited with {exitCode} {sinceTerm.Elapsed.TotalMilliseconds:0} ms after SIGTERM"));
        Assert.Equal(0, exitCode);

        // Withdrawn: the indexer's probe of its registry fails, heartbeats stop, the resolver's node timeout does the rest.
        var gone = await withdrawn!;
        var bound = cluster.Options.NodeTimeout + TimeSpan.FromSeconds(3);
        output.WriteLine(Invariant($"[{transport}] node 1 left every answer {gone.TotalMilliseconds:0} ms after SIGTERM (node timeout {cluster.Options.NodeTimeout.TotalSeconds} s, heartbeat {cluster.Options.HeartbeatInterval.TotalSeconds} s; bound {bound.TotalSeconds} s)"));
        Assert.True(gone <= bound, Invariant($"node 1 still answered {gone.TotalMilliseconds:0} ms after its registry's SIGTERM"));
        Assert.Contains(holder.Indexer!.Lines, l => l.Contains("heartbeats paused", StringComparison.Ordinal));

        // And back: its content was hidden, not withdrawn, so the first heartbeat after the restart lists it again.
        await holder.Registry.RestartAsync();
        var back = await Discovery.WaitAsync(cluster.ResolverApi, holder.Name, keys, listed: true, TimeSpan.FromSeconds(10), cluster.Describe);
        output.WriteLine(Invariant($"[{transport}] node 1 listed again {back.TotalMilliseconds:0} ms after its registry answered again"));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
