using Spegel.Core;

namespace Spegel.Containerd;

/// <summary>containerd could not be reached: the socket is missing, refuses connections, or the daemon went away mid-call.</summary>
public sealed class ContainerdUnavailableException : Exception
{
    public ContainerdUnavailableException()
        : base("containerd is unavailable.")
    {
    }

    public ContainerdUnavailableException(string message)
        : base(message)
    {
    }

    public ContainerdUnavailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public ContainerdUnavailableException(string socketPath, string reason, Exception? innerException)
        : base($"containerd is unavailable at '{socketPath}': {reason}", innerException)
    {
        SocketPath = socketPath;
        Reason = reason;
    }

    public string? SocketPath { get; }

    public string? Reason { get; }
}

/// <summary>A blob that was being read is not in containerd's content store (for this namespace).</summary>
public sealed class ContentNotFoundException : IOException
{
    public ContentNotFoundException()
    {
    }

    public ContentNotFoundException(string message)
        : base(message)
    {
    }

    public ContentNotFoundException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public ContentNotFoundException(Digest digest, Exception? innerException)
        : base($"content {digest} was not found in containerd", innerException)
    {
        Digest = digest;
    }

    public Digest Digest { get; }
}
