using Spegel.Core.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spegel.Core;
using Spegel.Core.Events;
using Spegel.Core.State;
using Spegel.Resolver.Events;
using Spegel.Resolver.Lookup;
using Spegel.Resolver.State;

namespace Spegel.Resolver.Tests;

/// <summary>The resolver's domain (mediator, handlers, map, lookup) over a given store, without HTTP.</summary>
public sealed class ResolverHarness : IDisposable
{
    private readonly ServiceProvider _services;

    public ResolverHarness(IKeyValueStore? store = null, ManualClock? clock = null, Action<ResolverOptions>? configure = null, ILoggerProvider? logs = null)
    {
        Clock = clock ?? new ManualClock();
        Store = store ?? new InMemoryKeyValueStore(Clock);
        var services = new ServiceCollection();
        services.AddLogging(b =>
        {
            if (logs is not null)
            {
                b.AddProvider(logs);
            }
        });
        services.AddSingleton<TimeProvider>(Clock);
        services.AddSingleton(Store);
        services.AddOptions<ResolverOptions>().Configure(o => configure?.Invoke(o));
        services.AddResolverDomain();
        _services = services.BuildServiceProvider();
    }

    public ManualClock Clock { get; }

    public IKeyValueStore Store { get; }

    public PeerMap Map => _services.GetRequiredService<PeerMap>();

    public ContentEventDispatcher Dispatcher => _services.GetRequiredService<ContentEventDispatcher>();

    public PeerLookup Lookup => _services.GetRequiredService<PeerLookup>();

    public async Task<EventOutcome> ApplyAsync(ContentEvent contentEvent)
    {
        var result = await Dispatcher.DispatchAsync(contentEvent, CancellationToken.None);
        Assert.False(result.Dropped, result.DropReason);
        return result.Outcome!.Value;
    }

    public async Task<PeersResponse> AskAsync(string key, string? exclude = null)
    {
        Assert.True(LookupKey.TryParse(key, out var parsed, out var error), error);
        return await Lookup.LookupAsync(parsed, exclude);
    }

    /// <summary>The node names answered for <paramref name="key"/>, in answer order.</summary>
    public async Task<IReadOnlyList<string>> PeersAsync(string key, string? exclude = null) =>
        [.. (await AskAsync(key, exclude)).Peers.Select(p => p.Node)];

    /// <summary>Raw values and ETags of keys: equal snapshots prove nothing was written in between.</summary>
    public async Task<IReadOnlyDictionary<string, (string Value, string ETag)>> SnapshotAsync(params IEnumerable<string> keys)
    {
        var found = await Store.GetManyAsync([.. keys]);
        return found.ToDictionary(e => e.Key, e => (System.Text.Encoding.UTF8.GetString(e.Value.Value.Span), e.Value.ETag), StringComparer.Ordinal);
    }

    public void Dispose() => _services.Dispose();
}

/// <summary>Events as an indexer would send them.</summary>
public static class TestEvents
{
    public const long Epoch = 1_750_000_000_000;

    public static string Digest(string seed) => Core.Digest.ComputeSha256(System.Text.Encoding.UTF8.GetBytes(seed)).ToString();

    /// <summary>A stable pod-network IP per node name: the resolver accepts only IP literals as node addresses.</summary>
    public static string Address(string node)
    {
        var h = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(node));
        return $"http://10.{h[0]}.{h[1]}.{Math.Max(1, (int)h[2])}:5000";
    }

    public static ContentAdvertised Advertised(string node, long seq, IEnumerable<string> digests, IEnumerable<TagBinding>? tags = null, long epoch = Epoch) => new()
    {
        Node = node,
        Address = Address(node),
        Epoch = epoch,
        Sequence = seq,
        Timestamp = DateTimeOffset.UnixEpoch,
        Digests = [.. digests],
        Tags = [.. tags ?? []],
    };

    public static ContentWithdrawn Withdrawn(string node, long seq, IEnumerable<string> digests, IEnumerable<string>? tags = null, long epoch = Epoch) => new()
    {
        Node = node,
        Address = Address(node),
        Epoch = epoch,
        Sequence = seq,
        Timestamp = DateTimeOffset.UnixEpoch,
        Digests = [.. digests],
        Tags = [.. tags ?? []],
    };

    public static NodeSnapshot Snapshot(string node, long seq, long snapshotId, int part, int partCount, IEnumerable<string> digests, IEnumerable<TagBinding>? tags = null, long epoch = Epoch) => new()
    {
        Node = node,
        Address = Address(node),
        Epoch = epoch,
        Sequence = seq,
        Timestamp = DateTimeOffset.UnixEpoch,
        SnapshotId = snapshotId,
        Part = part,
        PartCount = partCount,
        Digests = [.. digests],
        Tags = [.. tags ?? []],
    };

    public static NodeHeartbeat Heartbeat(string node, long seq, long epoch = Epoch, DateTimeOffset? timestamp = null) => new()
    {
        Node = node,
        Address = Address(node),
        Epoch = epoch,
        Sequence = seq,
        Timestamp = timestamp ?? DateTimeOffset.UnixEpoch,
        Interval = TimeSpan.FromSeconds(5),
    };
}
