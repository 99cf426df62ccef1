using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Spegel.Hosting;

namespace Spegel.Registry;

/// <summary>
/// The shared token registries present to each other (<c>Spegel:PeerToken</c> or <c>Spegel:PeerTokenFile</c>, e.g. a
/// mounted Kubernetes Secret). When on, a request for peer-only content (<c>X-Spegel-Mirrored: true</c>) must carry
/// it as a bearer token, and this registry sends it on every request to a peer. Requests from the node's own
/// containerd need none.
/// </summary>
/// <remarks>
/// On by default (<c>Spegel:PeerAuthentication=Token</c>): a registry that peers can reach — Dapr transport, or
/// listening beyond loopback — refuses to start without a token, so a forgotten Secret is a visible start-up error,
/// not an open port. Only Standalone on loopback (one machine: <c>./spegel cluster</c>, tests) runs without one.
/// <c>Spegel:PeerAuthentication=None</c> is the explicit, logged opt-out.
/// </remarks>
public sealed class PeerAuthOptions : IValidatableOptions
{
    public const string SectionName = "Spegel";

    /// <summary>The default: peers present the shared token.</summary>
    public const string TokenMode = "Token";

    /// <summary>The explicit opt-out: peer-only requests are served to anyone.</summary>
    public const string NoneMode = "None";

    private const int MinimumLength = 16;

    private readonly Lazy<byte[]?> tokenHash;

    public PeerAuthOptions() => tokenHash = new Lazy<byte[]?>(() => Token is { } token ? SHA256.HashData(Encoding.UTF8.GetBytes(token)) : null);

    /// <summary><c>Token</c> (default) or <c>None</c>; a string so that a typo is reported with the other errors.</summary>
    public string PeerAuthentication { get; set; } = TokenMode;

    public string? PeerToken { get; set; }

    public string? PeerTokenFile { get; set; }

    /// <summary>
    /// Why peers can reach this registry (Dapr transport, or a listen address beyond loopback), set at start from the
    /// transport and the listen addresses; null on Standalone on loopback, the one case a token is not required.
    /// Not bound from configuration.
    /// </summary>
    public string? ReachableBecause { get; internal set; }

    /// <summary>The explicit opt-out is in force.</summary>
    public bool IsOff => string.Equals(PeerAuthentication, NoneMode, StringComparison.OrdinalIgnoreCase);

    /// <summary>Peer-only requests must carry the token: a token is configured, or one is required here.</summary>
    public bool IsOn => !IsOff && (PeerToken is not null || PeerTokenFile is not null || ReachableBecause is not null);

    /// <summary>
    /// The token in force, read once: every peer request checks it, and a file read per request would put I/O on
    /// the blob path. A Secret rotation restarts the pod. Null when none is configured or the file cannot be read.
    /// </summary>
    public string? Token => field ??= PeerToken?.Trim() ?? ReadTokenFile(PeerTokenFile);

    public IEnumerable<string> Validate()
    {
        var validMode = string.Equals(PeerAuthentication, TokenMode, StringComparison.OrdinalIgnoreCase) || IsOff;
        if (!validMode)
        {
            yield return $"Spegel:PeerAuthentication must be {TokenMode} or {NoneMode}, not '{PeerAuthentication}'.";
        }

        if (PeerToken is not null && PeerTokenFile is not null)
        {
            yield return "Spegel:PeerToken and Spegel:PeerTokenFile are both set: choose one.";
        }

        if (PeerToken is not null && PeerToken.Trim().Length < MinimumLength)
        {
            yield return $"Spegel:PeerToken must be at least {MinimumLength} characters.";
        }

        if (PeerTokenFile is not null && (ReadTokenFile(PeerTokenFile)?.Length ?? 0) < MinimumLength)
        {
            yield return $"Spegel:PeerTokenFile '{PeerTokenFile}' must exist, be readable and hold a token of at least {MinimumLength} characters.";
        }

        if (IsOff && (PeerToken is not null || PeerTokenFile is not null))
        {
            yield return $"Spegel:PeerAuthentication is {NoneMode} but a peer token is set (Spegel:PeerToken or Spegel:PeerTokenFile): remove one of them.";
        }

        if (validMode && !IsOff && PeerToken is null && PeerTokenFile is null && ReachableBecause is { } reason)
        {
            yield return
                $"Spegel:PeerTokenFile (or Spegel:PeerToken) is required because {reason}: peers must authenticate each other. " +
                "Create a token of at least 16 characters (on Kubernetes: kubectl -n spegel create secret generic spegel-peer-token " +
                "--from-literal=token=\"$(openssl rand -hex 32)\", mounted by the manifests; elsewhere a file holding `openssl rand -hex 32`) " +
                $"and set Spegel:PeerTokenFile to its path, the same token on every node; or set Spegel:PeerAuthentication={NoneMode} " +
                "to let anyone who reaches the port read peer-only content.";
        }
    }

    /// <summary>
    /// Whether a peer-only request may be served. The token and the presented value are both hashed before the
    /// constant-time compare, so neither the content nor the length of the token leaks through timing. On with no
    /// readable token refuses everything: fail closed.
    /// </summary>
    internal bool Accepts(string? authorization)
    {
        if (!IsOn)
        {
            return true;
        }

        const string Scheme = "Bearer ";
        if (tokenHash.Value is not { } expected || authorization is null || !authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[Scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, expected);
    }

    private static string? ReadTokenFile(string? path)
    {
        if (path is null)
        {
            return null;
        }

        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return null;
        }
    }
}

/// <summary>
/// Whether peers can reach this registry, from what it is configured with before it binds: the Dapr transport (peers
/// come through the node network), or any listen address beyond loopback, found as Kestrel finds it —
/// <c>Kestrel:Endpoints:*:Url</c> when present, else <c>urls</c> (<c>--urls</c>, <c>Urls</c>,
/// <c>ASPNETCORE_URLS</c>), else <c>http_ports</c>/<c>https_ports</c> (every interface), else Kestrel's default
/// <c>http://localhost:5000</c>.
/// </summary>
public static class PeerReachability
{
    /// <summary>Why peers can reach this registry, for the validation message; null on Standalone on loopback.</summary>
    public static string? Reason(Transport transport, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (transport == Transport.Dapr)
        {
            return "Spegel:Transport is Dapr";
        }

        var open = ListenAddresses(configuration).Where(a => !IsLoopback(a)).ToList();
        return open.Count == 0 ? null : $"the registry listens beyond loopback ({string.Join(", ", open)})";
    }

    /// <summary>The addresses Kestrel will bind, in its order of precedence.</summary>
    public static IReadOnlyList<string> ListenAddresses(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var endpoints = configuration.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"]).OfType<string>().ToList();
        if (endpoints.Count > 0)
        {
            return endpoints;
        }

        if (Split(configuration["urls"]) is { Count: > 0 } urls)
        {
            return urls;
        }

        var ports = Split(configuration["http_ports"]).Select(p => $"http://*:{p}")
            .Concat(Split(configuration["https_ports"]).Select(p => $"https://*:{p}"))
            .ToList();
        return ports.Count > 0 ? ports : ["http://localhost:5000"];
    }

    /// <summary>
    /// Loopback only: <c>localhost</c>, 127.0.0.0/8, <c>::1</c>, or a Unix socket. <c>+</c>, <c>*</c>,
    /// <c>0.0.0.0</c>, <c>[::]</c>, any other IP or host name (Kestrel binds every interface for a name) and anything
    /// unparseable count as reachable.
    /// </summary>
    public static bool IsLoopback(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        BindingAddress binding;
        try
        {
            binding = BindingAddress.Parse(address.Trim());
        }
        catch (FormatException)
        {
            return false;
        }

        if (binding.IsUnixPipe)
        {
            return true;
        }

        if (string.Equals(binding.Host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return IPAddress.TryParse(binding.Host.Trim('[', ']'), out var ip)
            && IPAddress.IsLoopback(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip);
    }

    private static List<string> Split(string? value) =>
        value?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList() ?? [];
}

/// <summary>Says at start, once, that the explicit opt-out is in force and what it exposes.</summary>
internal sealed partial class PeerAuthenticationWarning(IOptions<PeerAuthOptions> options, ILogger<PeerAuthenticationWarning> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.IsOff)
        {
            LogOff(
                $"Spegel:PeerAuthentication={PeerAuthOptions.NoneMode}",
                "peer-only content (X-Spegel-Mirrored requests) is readable by anyone who can reach the registry's port",
                options.Value.ReachableBecause ?? "Standalone on loopback");
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "peer authentication off {setting} {risk} {reachable}")]
    private partial void LogOff(string setting, string risk, string reachable);
}

/// <summary>Adds the peer token to every request this registry sends to a peer.</summary>
internal sealed class PeerTokenHandler(string token) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>No peer token configured: requests go out unchanged.</summary>
internal sealed class PassThroughHandler : DelegatingHandler;
