using System.Globalization;
using Spegel.TestRig;

namespace Spegel.EndToEnd.Tests.Cluster;

/// <summary>The service processes of a <see cref="LocalCluster"/> by name, and their resident memory.</summary>
public static class ClusterProcesses
{
    /// <summary>Every service process: <c>resolver</c>, <c>node-1-registry</c>, <c>node-1-indexer</c>…</summary>
    public static IReadOnlyList<(string Name, SpegelServiceProcess Process)> Services(this LocalCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var services = new List<(string, SpegelServiceProcess)>();
        if (cluster.Resolver is not null)
        {
            services.Add(("resolver", cluster.Resolver));
        }

        foreach (var node in cluster.Nodes)
        {
            services.Add(($"{node.Name}-registry", node.Registry));
            if (node.Indexer is not null)
            {
                services.Add(($"{node.Name}-indexer", node.Indexer));
            }
        }

        return services;
    }

    /// <summary>The process's resident set (<c>VmRSS</c> of <c>/proc/&lt;pid&gt;/status</c>) in bytes, or null when it is not running.</summary>
    public static long? ResidentBytes(this SpegelServiceProcess process)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (!process.IsRunning)
        {
            return null;
        }

        try
        {
            foreach (var line in File.ReadLines($"/proc/{process.Pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    // "VmRSS:     123456 kB"
                    var kb = line.AsSpan(6).Trim();
                    return long.Parse(kb[..kb.IndexOf(' ')], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            // Gone between the check and the read.
        }

        return null;
    }
}
