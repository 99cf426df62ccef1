namespace Spegel.Core;

/// <summary>
/// The name, tag and host grammar of the OCI distribution spec and distribution/reference,
/// written as single-pass char loops: the input comes from the network, so every check is
/// linear and allocation-free, and only ASCII is accepted (no Unicode look-alikes).
/// </summary>
internal static class ReferenceGrammar
{
    public const string DockerHub = "docker.io";
    public const string LegacyDockerHub = "index.docker.io";
    public const string OfficialRepositoryPrefix = "library/";
    public const string DefaultTag = "latest";
    public const string Localhost = "localhost";

    /// <summary>The bound on <c>registry/repository</c> that distribution/reference enforces.</summary>
    public const int MaxNameLength = 255;

    public const int MaxTagLength = 128;

    /// <summary><c>[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}</c>.</summary>
    public static bool IsValidTag(ReadOnlySpan<char> tag)
    {
        if (tag.IsEmpty || tag.Length > MaxTagLength || !(char.IsAsciiLetterOrDigit(tag[0]) || tag[0] == '_'))
        {
            return false;
        }

        foreach (var c in tag[1..])
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Path components <c>[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*</c> joined by single slashes.</summary>
    public static bool IsValidRepository(ReadOnlySpan<char> repository)
    {
        if (repository.IsEmpty)
        {
            return false;
        }

        foreach (var range in repository.Split('/'))
        {
            if (!IsValidPathComponent(repository[range]))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsValidPathComponent(ReadOnlySpan<char> component)
    {
        if (component.IsEmpty || !IsLowerAlphanumeric(component[0]) || !IsLowerAlphanumeric(component[^1]))
        {
            return false;
        }

        // Walk separator runs between alphanumeric runs: a run is ".", "_", "__" or any number of "-".
        var i = 0;
        while (i < component.Length)
        {
            if (IsLowerAlphanumeric(component[i]))
            {
                i++;
                continue;
            }

            var start = i;
            var separator = component[i];
            while (i < component.Length && component[i] == separator)
            {
                i++;
            }

            var run = i - start;
            var valid = separator switch
            {
                '.' => run == 1,
                '_' => run <= 2,
                '-' => true,
                _ => false,
            };
            // A separator run must be followed by an alphanumeric, so "a.-b" is two runs and invalid.
            if (!valid || !IsLowerAlphanumeric(component[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// <c>host[:port]</c> where host is a DNS name (components <c>[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?</c>
    /// joined by dots) or a bracketed IPv6 address, and port is decimal up to 65535.
    /// </summary>
    public static bool IsValidHost(ReadOnlySpan<char> host)
    {
        ReadOnlySpan<char> port;
        if (host.StartsWith('['))
        {
            var close = host.IndexOf(']');
            if (close < 2 || !IsIpv6Body(host[1..close]))
            {
                return false;
            }

            port = host[(close + 1)..];
        }
        else
        {
            var colon = host.IndexOf(':');
            if (!IsValidDnsName(colon < 0 ? host : host[..colon]))
            {
                return false;
            }

            port = colon < 0 ? default : host[colon..];
        }

        return port.IsEmpty || (port[0] == ':' && IsValidPort(port[1..]));
    }

    /// <summary>
    /// Whether the first path component names a registry rather than a Docker Hub namespace,
    /// exactly as distribution/reference's splitDockerDomain decides it.
    /// </summary>
    public static bool LooksLikeHost(ReadOnlySpan<char> component) =>
        component.SequenceEqual(Localhost)
        || component.ContainsAny('.', ':')
        || component.ContainsAnyInRange('A', 'Z');

    /// <summary>Maps the legacy Docker Hub host to the one containerd stores in image names.</summary>
    public static string NormalizeHost(string host) => host == LegacyDockerHub ? DockerHub : host;

    /// <summary>On Docker Hub a single-component repository is an official image under <c>library/</c>.</summary>
    public static string NormalizeRepository(string host, string repository) =>
        host == DockerHub && !repository.Contains('/', StringComparison.Ordinal) ? OfficialRepositoryPrefix + repository : repository;

    private static bool IsValidDnsName(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty)
        {
            return false;
        }

        foreach (var range in name.Split('.'))
        {
            var label = name[range];
            if (label.IsEmpty || !char.IsAsciiLetterOrDigit(label[0]) || !char.IsAsciiLetterOrDigit(label[^1]))
            {
                return false;
            }

            foreach (var c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-')
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static bool IsIpv6Body(ReadOnlySpan<char> body)
    {
        foreach (var c in body)
        {
            if (!char.IsAsciiHexDigit(c) && c != ':')
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsValidPort(ReadOnlySpan<char> port)
    {
        if (port.Length > 5)
        {
            return false;
        }

        var value = 0;
        foreach (var c in port)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            value = (value * 10) + (c - '0');
        }

        return value is > 0 and <= 65535;
    }

    private static bool IsLowerAlphanumeric(char c) => char.IsAsciiDigit(c) || char.IsAsciiLetterLower(c);
}
