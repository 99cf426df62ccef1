using System.Text;

namespace Spegel.TestRig;

/// <summary>
/// Writes containerd's registry host configuration (<c>&lt;dir&gt;/&lt;registry host&gt;/hosts.toml</c>) for tests:
/// mirrors first, in order, each with pull and resolve; the upstream as <c>server</c>, which containerd falls
/// back to after every mirror failed. This is the test's own writer, deliberately independent of the product's.
/// </summary>
public static class HostsDir
{
    /// <summary>The directory containerd consults for registries without a directory of their own.</summary>
    public const string DefaultHost = "_default";

    /// <summary>
    /// Writes <c>&lt;hostsDirectory&gt;/&lt;registryHost&gt;/hosts.toml</c> and returns its path. <paramref name="server"/>
    /// is the upstream URL (e.g. <c>http://127.0.0.1:5000</c>); null leaves containerd's default (https on the
    /// registry host), which is what <see cref="DefaultHost"/> usually wants.
    /// </summary>
    public static string Write(string hostsDirectory, string registryHost, string? server, params string[] mirrorUrls)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostsDirectory);
        ArgumentException.ThrowIfNullOrEmpty(registryHost);
        var dir = Path.Combine(hostsDirectory, registryHost);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "hosts.toml");
        File.WriteAllText(path, Render(server, mirrorUrls));
        return path;
    }

    public static string Render(string? server, IEnumerable<string> mirrorUrls)
    {
        ArgumentNullException.ThrowIfNull(mirrorUrls);
        var toml = new StringBuilder();
        if (server is not null)
        {
            toml.Append("server = ").AppendLine(Quote(server)).AppendLine();
        }

        foreach (var mirror in mirrorUrls)
        {
            toml.Append("[host.").Append(Quote(mirror)).AppendLine("]")
                .AppendLine("  capabilities = [\"pull\", \"resolve\"]")
                .AppendLine();
        }

        return toml.ToString();
    }

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
