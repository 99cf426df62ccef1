namespace Spegel.TestRig;

/// <summary>Finds the binaries the rig runs, failing loudly (never skipping) with the Debian package to install.</summary>
public static class RequiredTools
{
    private static readonly string[] FallbackDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    public static string Containerd => Find("containerd", "containerd");

    public static string Ctr => Find("ctr", "containerd");

    public static string DockerRegistry => Find("docker-registry", "docker-registry");

    public static string Skopeo => Find("skopeo", "skopeo");

    public static string Setsid => Find("setsid", "util-linux");

    public static string Mount => Find("mount", "mount");

    public static string Umount => Find("umount", "mount");

    /// <summary>The full path of <paramref name="tool"/>, or a <see cref="MissingToolException"/> naming <paramref name="debianPackage"/>.</summary>
    public static string Find(string tool, string debianPackage)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(FallbackDirectories))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new MissingToolException(tool, debianPackage);
    }
}

/// <summary>A binary the integration tests need is not installed.</summary>
public sealed class MissingToolException : Exception
{
    public MissingToolException()
    {
    }

    public MissingToolException(string message)
        : base(message)
    {
    }

    public MissingToolException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public MissingToolException(string tool, string debianPackage)
        : base($"'{tool}' is not installed (searched PATH and the usual bin directories). Install the Debian package '{debianPackage}' " +
               $"(apt-get install -y {debianPackage}); ./test.sh does this. Integration tests need the real binary and do not skip.")
    {
        Tool = tool;
        DebianPackage = debianPackage;
    }

    public string? Tool { get; }

    public string? DebianPackage { get; }
}
