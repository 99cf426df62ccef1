namespace Spegel.Hosting;

/// <summary>How the services reach each other: through Dapr sidecars, or directly on one machine.</summary>
public enum Transport
{
    Standalone,
    Dapr,
}

/// <summary>Top-level options shared by every service (<c>Spegel:*</c>).</summary>
public sealed class SpegelOptions : IValidatableOptions
{
    public const string SectionName = "Spegel";

    /// <summary><c>Standalone</c> or <c>Dapr</c>; a string so that a typo is reported with the other errors, not as a binder exception.</summary>
    public string Transport { get; set; } = nameof(Hosting.Transport.Standalone);

    public Transport TransportKind =>
        Enum.TryParse<Transport>(Transport, ignoreCase: true, out var kind) ? kind : Hosting.Transport.Standalone;

    public IEnumerable<string> Validate()
    {
        if (!Enum.TryParse<Transport>(Transport, ignoreCase: true, out var kind) || !Enum.IsDefined(kind) || int.TryParse(Transport, out _))
        {
            yield return $"Spegel:Transport must be Standalone or Dapr, not '{Transport}'.";
        }
    }
}

/// <summary>This node's identity (<c>Spegel:Node:*</c>).</summary>
public sealed class NodeOptions : IValidatableOptions
{
    public const string SectionName = "Spegel:Node";

    /// <summary>The node name peers and the resolver know this node by. Defaults to the host name.</summary>
    public string Name { get; set; } = Environment.MachineName;

    /// <summary>The URL peers use to reach this node's registry, e.g. <c>http://10.0.0.5:5000</c>.</summary>
    public string? Address { get; set; }

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            yield return "Spegel:Node:Name must not be empty.";
        }
        else if (Name.Length > 253 || Name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_')))
        {
            yield return $"Spegel:Node:Name '{Name}' must be at most 253 characters of letters, digits, '-', '.' or '_'.";
        }

        if (Address is not null && !IsHttpUrl(Address))
        {
            yield return $"Spegel:Node:Address '{Address}' must be an absolute http or https URL.";
        }
    }

    internal static bool IsHttpUrl(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);
}
