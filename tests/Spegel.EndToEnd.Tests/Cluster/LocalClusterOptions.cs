namespace Spegel.EndToEnd.Tests.Cluster;

/// <summary>How the services of a <see cref="LocalCluster"/> reach each other.</summary>
public enum ClusterTransport
{
    /// <summary>No sidecars: indexers POST CloudEvents to the resolver, registries call its lookup URL, state in memory.</summary>
    Standalone,

    /// <summary>
    /// One sidecar double (tests/Spegel.DaprDouble) per service process, all on one backplane (as real sidecars share
    /// Redis): indexers publish through theirs, the resolver subscribes and keeps state through its own, registries
    /// reach the resolver by app-id through their sidecar's invoke endpoint. No <c>Spegel:Resolver:Url</c> is given.
    /// </summary>
    Dapr,
}

/// <summary>The shape of a <see cref="LocalCluster"/>.</summary>
public sealed class LocalClusterOptions
{
    /// <summary>How many nodes (each: containerd, registry, optional indexer), named <c>node-1</c>…</summary>
    public int Nodes { get; init; } = 3;

    /// <summary>Run an indexer on every node (issue 4, 5); off for registry-only tests.</summary>
    public bool Indexers { get; init; } = true;

    /// <summary>Run the resolver; off for registry-only tests (the registries then serve only their own node).</summary>
    public bool Resolver { get; init; } = true;

    public ClusterTransport Transport { get; init; } = ClusterTransport.Standalone;

    /// <summary><c>Spegel:Resolver:NodeTimeout</c>: a node silent this long drops out of answers.</summary>
    public TimeSpan NodeTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary><c>Spegel:Resolver:FreshnessBucket</c>; null keeps the service default. A tiny bucket makes the latest advertiser first.</summary>
    public TimeSpan? FreshnessBucket { get; init; }

    /// <summary><c>Spegel:Indexer:HeartbeatInterval</c>, well under <see cref="NodeTimeout"/>.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Extra arguments for every registry (<c>--Spegel:MirrorResolveTimeout=…</c>).</summary>
    public IReadOnlyList<string> RegistryArguments { get; init; } = [];

    public IReadOnlyList<string> IndexerArguments { get; init; } = [];

    public IReadOnlyList<string> ResolverArguments { get; init; } = [];

    /// <summary>Extra environment of one node's indexer, by node name (libfaketime for a skewed clock); null or no entry: none.</summary>
    public Func<string, IReadOnlyDictionary<string, string>?>? IndexerEnvironment { get; init; }

    /// <summary>
    /// Send every registry one miss through the mirror path before handing the cluster over, so that the first pull
    /// of a test does not also pay the services' JIT start-up (a running node's registry is long past it).
    /// </summary>
    public bool WarmUp { get; init; } = true;

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
}
