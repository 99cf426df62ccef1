using System.Text.Json;
using System.Text.Json.Serialization;

namespace Spegel.Core.Routing;

/// <summary>
/// The resolver's lookup answer, <c>GET /v1/peers?key=…</c>: the nodes that hold the key, best first.
/// For a tag key, <see cref="Digest"/> is the newest digest known for the tag, and only its holders are listed.
/// </summary>
public sealed record PeersResponse(string Key, string? Digest, IReadOnlyList<Peer> Peers);

/// <summary>A node and the URL of its registry.</summary>
public sealed record Peer(string Node, string Url);

/// <summary>The lookup route and its parameters, shared by the resolver and its clients.</summary>
public static class PeersRoute
{
    public const string Path = "/v1/peers";

    public static string For(string key, string? exclude) =>
        exclude is null
            ? $"{Path}?key={Uri.EscapeDataString(key)}"
            : $"{Path}?key={Uri.EscapeDataString(key)}&exclude={Uri.EscapeDataString(exclude)}";
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PeersResponse))]
public sealed partial class PeersJsonContext : JsonSerializerContext;
