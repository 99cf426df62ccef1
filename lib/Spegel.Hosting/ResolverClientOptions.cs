namespace Spegel.Hosting;

/// <summary>How the registry and indexer reach the resolver (<c>Spegel:Resolver:*</c>).</summary>
public sealed class ResolverClientOptions : IValidatableOptions
{
    public const string SectionName = "Spegel:Resolver";

    /// <summary>The resolver's base URL in Standalone mode; in Dapr mode the resolver is reached by app-id.</summary>
    public string? Url { get; set; }

    /// <summary>The resolver's Dapr app-id.</summary>
    public string AppId { get; set; } = "resolver";

    /// <summary>Set by the services from <c>Spegel:Transport</c>: the URL is required only in Standalone.</summary>
    internal bool UrlRequired { get; set; }

    public IEnumerable<string> Validate()
    {
        if (Url is null)
        {
            if (UrlRequired)
            {
                yield return "Spegel:Resolver:Url is required in Standalone mode (the resolver's base URL, e.g. http://127.0.0.1:5002).";
            }
        }
        else if (!NodeOptions.IsHttpUrl(Url))
        {
            yield return $"Spegel:Resolver:Url '{Url}' must be an absolute http or https URL.";
        }

        if (string.IsNullOrWhiteSpace(AppId))
        {
            yield return "Spegel:Resolver:AppId must not be empty.";
        }
    }
}
