using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Spegel.Hosting;

namespace Spegel.Registry;

/// <summary>
/// The shared token registries present to each other (<c>Spegel:PeerToken</c> or <c>Spegel:PeerTokenFile</c>, e.g. a
/// mounted Kubernetes Secret). When set, a request for peer-only content (<c>X-Spegel-Mirrored: true</c>) must carry
/// it as a bearer token, and this registry sends it on every request to a peer. Requests from the node's own
/// containerd need none. Off when neither key is set.
/// </summary>
public sealed class PeerAuthOptions : IValidatableOptions
{
    public const string SectionName = "Spegel";

    public string? PeerToken { get; set; }

    public string? PeerTokenFile { get; set; }

    private string? token;
    private bool tokenRead;

    /// <summary>
    /// The token in force, read once: every peer request checks it, and a file read per request would put I/O on
    /// the blob path. A Secret rotation restarts the pod.
    /// </summary>
    public string? Token
    {
        get
        {
            if (!tokenRead)
            {
                token = PeerToken ?? (PeerTokenFile is { } file && File.Exists(file) ? File.ReadAllText(file).Trim() : null);
                tokenRead = true;
            }

            return token;
        }
    }

    public IEnumerable<string> Validate()
    {
        if (PeerToken is not null && PeerTokenFile is not null)
        {
            yield return "Spegel:PeerToken and Spegel:PeerTokenFile are both set: choose one.";
        }

        if (PeerToken is { Length: < 16 })
        {
            yield return "Spegel:PeerToken must be at least 16 characters.";
        }

        if (PeerTokenFile is not null && (!File.Exists(PeerTokenFile) || File.ReadAllText(PeerTokenFile).Trim().Length < 16))
        {
            yield return $"Spegel:PeerTokenFile '{PeerTokenFile}' must exist and hold a token of at least 16 characters.";
        }
    }

    internal bool Accepts(string? authorization)
    {
        var token = Token;
        if (token is null)
        {
            return true;
        }

        const string Scheme = "Bearer ";
        return authorization is not null
            && authorization.StartsWith(Scheme, StringComparison.Ordinal)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(authorization[Scheme.Length..]), Encoding.UTF8.GetBytes(token));
    }
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
