using System.Net;
using System.Net.Sockets;

namespace Spegel.Resolver.Events;

/// <summary>
/// Which node addresses an event may carry (<c>Spegel:Resolver:PeerNetworks</c>). Every registry fetches from the
/// address the resolver hands out, so an event that names a host name, the cloud metadata service or a link-local
/// address would turn every registry into a client of whatever the sender chose. An address must be an IP literal,
/// inside a listed network when any is listed; link-local, unspecified, multicast and broadcast addresses are
/// refused unless a listed network lies inside their range (listing <c>0.0.0.0/0</c> does not let them in).
/// </summary>
public sealed class NodeAddressPolicy
{
    // Never a peer's registry unless an operator lists (part of) the range itself: metadata services, autoconfiguration, "any".
    private static readonly IPNetwork[] Reserved =
    [
        IPNetwork.Parse("169.254.0.0/16"),
        IPNetwork.Parse("fe80::/10"),
        IPNetwork.Parse("0.0.0.0/32"),
        IPNetwork.Parse("::/128"),
        IPNetwork.Parse("224.0.0.0/4"),
        IPNetwork.Parse("255.255.255.255/32"),
        IPNetwork.Parse("ff00::/8"),
    ];

    private static readonly IPNetwork[] Loopback = [IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")];

    private readonly IReadOnlyList<IPNetwork> networks;

    private NodeAddressPolicy(IReadOnlyList<IPNetwork> networks) => this.networks = networks;

    /// <summary>No list: any IP literal outside the reserved ranges, loopback included (single-host setups advertise 127.0.0.1).</summary>
    public static NodeAddressPolicy AnyAddress { get; } = new([]);

    /// <summary>The policy for the given CIDRs; entries that do not parse are ignored here (options validation reports them at start).</summary>
    public static NodeAddressPolicy From(IEnumerable<string> cidrs)
    {
        ArgumentNullException.ThrowIfNull(cidrs);
        return new([.. cidrs.Select(c => TryParseNetwork(c, out var n) ? n : (IPNetwork?)null).OfType<IPNetwork>()]);
    }

    /// <summary>Parses <c>10.0.0.0/8</c>, <c>fd00::/8</c> or a single address (a /32 or /128).</summary>
    public static bool TryParseNetwork(string? value, out IPNetwork network)
    {
        network = default;
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }

        var slash = value.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0 && IPNetwork.TryParse(value, out network))
        {
            // 10.1.2.3/8 is refused rather than read as 10.0.0.0/8: it more likely meant one address than a /8.
            return IsFullLiteral(value.AsSpan(0, slash)) && IPAddress.TryParse(value.AsSpan(0, slash), out var written) && written.Equals(network.BaseAddress);
        }

        if (slash < 0 && IsFullLiteral(value) && IPAddress.TryParse(value, out var single))
        {
            network = new IPNetwork(single, single.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }

        return false;
    }

    /// <summary>Null when <paramref name="address"/> (already an absolute http(s) URL) may be handed to registries; else why not.</summary>
    public string? Check(Uri address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.HostNameType is not (UriHostNameType.IPv4 or UriHostNameType.IPv6) || !IPAddress.TryParse(address.DnsSafeHost, out var ip))
        {
            return $"node address '{address.OriginalString}' must name its host by IP address, not by name";
        }

        if (ip.IsIPv4MappedToIPv6)
        {
            ip = ip.MapToIPv4();
        }

        var listed = networks.Where(n => n.Contains(ip)).ToList();
        if (Reserved.FirstOrDefault(r => r.Contains(ip)) is var reserved && reserved != default && !listed.Any(n => Within(n, reserved)))
        {
            return $"node address '{address.OriginalString}' is in the reserved range {reserved} (link-local, metadata, unspecified or multicast); list it in Spegel:Resolver:PeerNetworks to allow it";
        }

        if (networks.Count == 0)
        {
            return null;
        }

        if (listed.Count == 0)
        {
            return $"node address '{address.OriginalString}' is outside Spegel:Resolver:PeerNetworks ({string.Join(", ", networks)})";
        }

        // With a list, loopback only when a listed network lies inside it: 0.0.0.0/0 means "any pod", not "this host".
        return Loopback.FirstOrDefault(l => l.Contains(ip)) is var loopback && loopback != default && !listed.Any(n => Within(n, loopback))
            ? $"node address '{address.OriginalString}' is loopback; list {loopback} in Spegel:Resolver:PeerNetworks to allow it"
            : null;
    }

    // IPAddress also parses the legacy forms "10" and "10.1" (0.0.0.10, 10.0.0.1): in a configuration, a typo.
    private static bool IsFullLiteral(ReadOnlySpan<char> value) => value.Contains(':') || value.Count('.') == 3;

    private static bool Within(IPNetwork inner, IPNetwork outer) =>
        inner.BaseAddress.AddressFamily == outer.BaseAddress.AddressFamily && inner.PrefixLength >= outer.PrefixLength && outer.Contains(inner.BaseAddress);
}
