using Spegel.Hosting;

namespace Spegel.Resolver.Observability;

/// <summary>The cluster page and the node gauges (<c>Spegel:Ui:*</c>).</summary>
public sealed class ClusterPageOptions : IValidatableOptions
{
    public const string SectionName = "Spegel:Ui";

    /// <summary>How often the live and known node gauges are recomputed from the state store.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long the resolver waits for a node's <c>/v1/status</c>; a node that is slower shows without its counters.</summary>
    public TimeSpan StatusTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long one computed view is reused (several people watching cost one computation).</summary>
    public TimeSpan CacheDuration { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How often the nodes' indexes (<c>Spegel:Resolver:IndexChunks</c> keys per node) are read again for digest counts
    /// and the list of images; between two reads, node liveness and requests still refresh with every view.
    /// </summary>
    public TimeSpan IndexScanInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>At most this many nodes are asked for their status (the live ones first).</summary>
    public int MaxNodes { get; set; } = 500;

    /// <summary>At most this many images are listed.</summary>
    public int MaxImages { get; set; } = 500;

    /// <summary>How many recent requests the page shows, merged across nodes.</summary>
    public int RecentRequests { get; set; } = 50;

    public IEnumerable<string> Validate()
    {
        if (RefreshInterval < TimeSpan.FromMilliseconds(100))
        {
            yield return $"{SectionName}:RefreshInterval must be at least 100 ms, not {RefreshInterval}.";
        }

        if (StatusTimeout < TimeSpan.FromMilliseconds(50) || StatusTimeout > TimeSpan.FromSeconds(30))
        {
            yield return $"{SectionName}:StatusTimeout must be between 50 ms and 30 s, not {StatusTimeout}.";
        }

        if (CacheDuration < TimeSpan.Zero || IndexScanInterval < TimeSpan.Zero)
        {
            yield return $"{SectionName}:CacheDuration and IndexScanInterval must not be negative ({CacheDuration}, {IndexScanInterval}).";
        }

        if (MaxNodes < 1 || MaxImages < 1 || RecentRequests < 1)
        {
            yield return $"{SectionName}:MaxNodes, MaxImages and RecentRequests must be at least 1.";
        }
    }
}
