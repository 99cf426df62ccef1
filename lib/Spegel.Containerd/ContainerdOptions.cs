namespace Spegel.Containerd;

/// <summary>Where containerd is and which of its namespaces the mirror serves.</summary>
public sealed class ContainerdOptions
{
    public const string SectionName = "Spegel:Containerd";

    /// <summary>containerd's gRPC Unix socket.</summary>
    public string Socket { get; set; } = "/run/containerd/containerd.sock";

    /// <summary>The containerd namespace; kubelet's CRI uses <c>k8s.io</c>.</summary>
    public string Namespace { get; set; } = "k8s.io";

    /// <summary>
    /// containerd's content store directory, for reading blobs straight from disk.
    /// <c>null</c> turns file access off: every read then goes through gRPC.
    /// </summary>
    public string? ContentPath { get; set; } = "/var/lib/containerd/io.containerd.content.v1.content";

    /// <summary>How long connecting to the socket may take before containerd counts as unavailable.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Deadline for unary calls (version, image and content lookups). Streams have none.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
