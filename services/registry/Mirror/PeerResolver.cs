using System.Collections.Concurrent;
using System.Net.Http.Json;
using Microsoft.Extensions.Options;
using Spegel.Core.Routing;
using Spegel.Hosting;

namespace Spegel.Registry.Mirror;

/// <summary>Asks the resolver which peers hold a key; the registry never takes a peer address from anywhere else.</summary>
public interface IPeerResolver
{
    /// <summary>Peers holding the key, best first, this node excluded. Throws when the resolver cannot be asked.</summary>
    Task<PeersResponse> LookupAsync(string key, CancellationToken cancellationToken);
}

/// <summary>
/// Looks peers up over HTTP: the resolver's URL in Standalone, the Dapr sidecar's invoke-by-app-id in a cluster
/// (the named client's base address differs, nothing else). Concurrent lookups of one key share a call, and an
/// answer is reused briefly, because containerd asks for one image's blobs all at once.
/// </summary>
public sealed class HttpPeerResolver(
    IHttpClientFactory clients,
    IOptions<MirrorOptions> options,
    IOptions<NodeOptions> node,
    TimeProvider time) : IPeerResolver
{
    public const string ClientName = "resolver";

    private readonly ConcurrentDictionary<string, CachedLookup> cache = new(StringComparer.Ordinal);

    public Task<PeersResponse> LookupAsync(string key, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var ttl = options.Value.MirrorLookupCacheTtl;
        while (true)
        {
            if (cache.TryGetValue(key, out var cached))
            {
                if (!cached.Task.IsCompleted || (cached.Task.IsCompletedSuccessfully && now - cached.Created < ttl))
                {
                    return cached.Task.WaitAsync(cancellationToken);
                }

                cache.TryRemove(new KeyValuePair<string, CachedLookup>(key, cached));
            }

            // The shared call is not tied to one caller's cancellation: others may still be waiting on it.
            var fresh = new CachedLookup(now, FetchAsync(key));
            if (cache.TryAdd(key, fresh))
            {
                if (cache.Count > 10_000)
                {
                    Trim(now, ttl);
                }

                return fresh.Task.WaitAsync(cancellationToken);
            }
        }
    }

    private async Task<PeersResponse> FetchAsync(string key)
    {
        await Task.Yield();
        using var timeout = new CancellationTokenSource(options.Value.MirrorResolveTimeout);
        var client = clients.CreateClient(ClientName);
        if (client.BaseAddress is null)
        {
            throw new InvalidOperationException("no resolver is configured (Spegel:Resolver:Url)");
        }

        var self = node.Value;
        var response = await client.GetFromJsonAsync(PeersRoute.For(key, self.Name), PeersJsonContext.Default.PeersResponse, timeout.Token)
            ?? throw new InvalidDataException("the resolver answered an empty body");
        var peers = response.Peers
            .Where(p => p.Node != self.Name && p.Url != self.Address && IsHttpUrl(p.Url))
            .ToList();
        return response with { Peers = peers };
    }

    private static bool IsHttpUrl(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    private void Trim(DateTimeOffset now, TimeSpan ttl)
    {
        foreach (var (key, value) in cache)
        {
            if (value.Task.IsCompleted && now - value.Created >= ttl)
            {
                cache.TryRemove(new KeyValuePair<string, CachedLookup>(key, value));
            }
        }
    }

    private sealed record CachedLookup(DateTimeOffset Created, Task<PeersResponse> Task);
}
