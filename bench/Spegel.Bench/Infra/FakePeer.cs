using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Spegel.Core.Events;
using Spegel.TestRig;

namespace Spegel.Bench.Infra;

/// <summary>
/// A node that the resolver believes holds content but that never answers: it accepts connections, reads the
/// request and stays silent (the stalled peer the hedge exists for). Advertised with the same CloudEvent the
/// Standalone indexer POSTs, and kept alive with heartbeats while it runs.
/// </summary>
public sealed class StalledPeer : IAsyncDisposable
{
    private readonly TcpListener listener;
    private readonly CancellationTokenSource stop = new();
    private readonly Task acceptLoop;
    private readonly Task heartbeatLoop;
    private readonly ResolverEvents events;
    private int accepted;

    private StalledPeer(string name, ResolverEvents events)
    {
        Name = name;
        this.events = events;
        listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Url = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}");
        acceptLoop = Task.Run(AcceptAsync);
        heartbeatLoop = Task.Run(HeartbeatAsync);
    }

    public string Name { get; }

    public string Url { get; }

    /// <summary>Connections accepted so far: each is one request the mirror sent here and then gave up on.</summary>
    public int Accepted => Volatile.Read(ref accepted);

    public static async Task<StalledPeer> StartAsync(string name, string resolverUrl, IReadOnlyList<TagBinding> tags, IReadOnlyList<string> digests, CancellationToken ct)
    {
        var events = new ResolverEvents(resolverUrl, name);
        var peer = new StalledPeer(name, events);
        await peer.AdvertiseAsync(tags, digests, ct);
        return peer;
    }

    /// <summary>(Re)advertises, which also makes this node the freshest holder in the resolver's ordering.</summary>
    public Task AdvertiseAsync(IReadOnlyList<TagBinding> tags, IReadOnlyList<string> digests, CancellationToken ct) =>
        events.AdvertiseAsync(Url, tags, digests, ct);

    private async Task AcceptAsync()
    {
        var open = new List<Task>();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var socket = await listener.AcceptSocketAsync(stop.Token);
                Interlocked.Increment(ref accepted);
                open.Add(HoldAsync(socket));
                open.RemoveAll(t => t.IsCompleted);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }

        await Task.WhenAll(open);
    }

    // Read whatever the client sends and never answer; return when it gives up (closes) or the peer stops.
    private async Task HoldAsync(Socket socket)
    {
        using (socket)
        {
            var buffer = new byte[4096];
            try
            {
                while (await socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token) > 0)
                {
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (SocketException)
            {
            }
        }
    }

    private async Task HeartbeatAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        try
        {
            while (await timer.WaitForNextTickAsync(stop.Token))
            {
                try
                {
                    await events.HeartbeatAsync(Url, stop.Token);
                }
                catch (HttpRequestException)
                {
                    // The resolver may be restarting; the next beat tries again.
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        await acceptLoop;
        await heartbeatLoop;
        try
        {
            await events.WithdrawAllAsync(Url, CancellationToken.None);
        }
        catch (HttpRequestException)
        {
        }

        listener.Dispose();
        events.Dispose();
        stop.Dispose();
    }
}

/// <summary>Posts a node's content events to a Standalone resolver as the indexer does (CloudEvent envelope, same route).</summary>
public sealed class ResolverEvents(string resolverUrl, string node) : IDisposable
{
    private static readonly MediaTypeHeaderValue CloudEventsJson = new("application/cloudevents+json");

    private readonly HttpClient http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };
    private readonly long epoch = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    private readonly List<string> advertisedDigests = [];
    private readonly List<string> advertisedTags = [];
    private long sequence;

    public Task AdvertiseAsync(string address, IReadOnlyList<TagBinding> tags, IReadOnlyList<string> digests, CancellationToken ct)
    {
        advertisedTags.AddRange(tags.Select(t => t.Reference));
        advertisedDigests.AddRange(digests);
        return PostAsync(new ContentAdvertised { Node = node, Address = address, Epoch = epoch, Sequence = Interlocked.Increment(ref sequence), Timestamp = DateTimeOffset.UtcNow, Tags = tags, Digests = digests }, ct);
    }

    public Task HeartbeatAsync(string address, CancellationToken ct) =>
        PostAsync(new NodeHeartbeat { Node = node, Address = address, Epoch = epoch, Sequence = Interlocked.Increment(ref sequence), Timestamp = DateTimeOffset.UtcNow, Interval = TimeSpan.FromSeconds(2) }, ct);

    public Task WithdrawAllAsync(string address, CancellationToken ct) =>
        PostAsync(new ContentWithdrawn { Node = node, Address = address, Epoch = epoch, Sequence = Interlocked.Increment(ref sequence), Timestamp = DateTimeOffset.UtcNow, Tags = advertisedTags.Distinct().ToList(), Digests = advertisedDigests.Distinct().ToList() }, ct);

    private async Task PostAsync(ContentEvent e, CancellationToken ct)
    {
        using var content = new ByteArrayContent(CloudEvent.Wrap(e, ContentTopics.DefaultPubSub, ContentTopics.DefaultTopic));
        content.Headers.ContentType = CloudEventsJson;
        using var response = await http.PostAsync(new Uri(new Uri(resolverUrl), ContentTopics.SubscriptionRoute), content, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode || !body.Contains("SUCCESS", StringComparison.OrdinalIgnoreCase))
        {
            throw new HttpRequestException($"the resolver answered {(int)response.StatusCode} {body} to a {e.GetType().Name} for {node}");
        }
    }

    public void Dispose() => http.Dispose();
}
