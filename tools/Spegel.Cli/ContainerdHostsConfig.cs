using System.Globalization;
using System.Text;

namespace Spegel.Cli;

/// <summary>What <c>configure-containerd</c> is asked to write.</summary>
public sealed record HostsConfigRequest(
    string ConfigPath,
    IReadOnlyList<string> Registries,
    IReadOnlyList<Uri> MirrorTargets,
    bool ResolveTags,
    bool PrependExisting,
    TimeSpan DialTimeout);

/// <summary>
/// Writes containerd's registry host configuration (<c>&lt;config_path&gt;/&lt;registry&gt;/hosts.toml</c>) so the node's
/// mirror is tried first and the upstream last: the mirror targets with <c>pull</c> (and <c>resolve</c> when tags are
/// resolved) and a short <c>dial_timeout</c>, then the registry's own <c>server</c>. Existing configuration is backed
/// up once to <c>_backup</c>, kept after our mirrors with <c>PrependExisting</c>, and restored by <see cref="Cleanup"/>.
/// Every file is written to a temporary name and renamed, so a failure leaves nothing half-written.
/// </summary>
public static class ContainerdHostsConfig
{
    public const string DefaultRegistry = "_default";
    public const string BackupDirectory = "_backup";
    public const string FileName = "hosts.toml";

    /// <summary>Checks the request; every problem is returned, none thrown.</summary>
    public static IReadOnlyList<string> Validate(HostsConfigRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(request.ConfigPath) || !Path.IsPathRooted(request.ConfigPath))
        {
            errors.Add($"--config-path must be an absolute directory, not '{request.ConfigPath}'.");
        }

        if (request.MirrorTargets.Count == 0)
        {
            errors.Add("at least one --mirror-target URL is needed (the node's registry, e.g. http://127.0.0.1:30020).");
        }

        foreach (var target in request.MirrorTargets)
        {
            if (!target.IsAbsoluteUri || (target.Scheme != Uri.UriSchemeHttp && target.Scheme != Uri.UriSchemeHttps) || target.PathAndQuery != "/")
            {
                errors.Add($"--mirror-target '{target.OriginalString}' must be an http or https URL with no path.");
            }
        }

        foreach (var registry in request.Registries)
        {
            if (!IsRegistryHost(registry))
            {
                errors.Add($"--registry '{registry}' must be a registry host such as docker.io or registry.example.com:5000.");
            }
        }

        if (request.DialTimeout <= TimeSpan.Zero || request.DialTimeout > TimeSpan.FromMinutes(1))
        {
            errors.Add($"--dial-timeout must be between 1ms and 1m, not {request.DialTimeout}.");
        }

        return errors;
    }

    /// <summary>Parses a mirror target the way the command line gives it; invalid text becomes a relative Uri that <see cref="Validate"/> reports.</summary>
    public static Uri ParseTarget(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) ? uri : new Uri(text, UriKind.Relative);

    /// <summary>The upstream a registry name stands for: Docker Hub's API host for docker.io, https://host otherwise.</summary>
    public static string UpstreamServer(string registry) =>
        registry == "docker.io" ? "https://registry-1.docker.io" : $"https://{registry}";

    /// <summary>Writes one hosts.toml per registry (or <c>_default</c>); returns the files written.</summary>
    public static IReadOnlyList<string> Apply(HostsConfigRequest request)
    {
        var errors = Validate(request);
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors));
        }

        Directory.CreateDirectory(request.ConfigPath);
        EnsureWritable(request.ConfigPath);
        var backup = Path.Combine(request.ConfigPath, BackupDirectory);
        if (!Directory.Exists(backup))
        {
            BackUp(request.ConfigPath, backup);
        }

        var written = new List<string>();
        var registries = request.Registries.Count == 0 ? [DefaultRegistry] : request.Registries;
        foreach (var registry in registries)
        {
            var existing = request.PrependExisting ? ReadExisting(backup, registry) : null;
            var content = Render(registry, request.MirrorTargets, request.ResolveTags, request.DialTimeout, existing);
            var directory = Path.Combine(request.ConfigPath, registry);
            Directory.CreateDirectory(directory);
            if (request.PrependExisting)
            {
                CopyCompanionFiles(Path.Combine(backup, registry), directory);
            }

            var path = Path.Combine(directory, FileName);
            WriteAtomically(path, content);
            written.Add(path);
        }

        return written;
    }

    /// <summary>Restores the configuration saved before the first <see cref="Apply"/>; false when there is no backup.</summary>
    public static bool Cleanup(string configPath)
    {
        var backup = Path.Combine(configPath, BackupDirectory);
        if (!Directory.Exists(backup))
        {
            return false;
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(configPath))
        {
            if (Path.GetFileName(entry) == BackupDirectory)
            {
                continue;
            }

            if (Directory.Exists(entry))
            {
                Directory.Delete(entry, recursive: true);
            }
            else
            {
                File.Delete(entry);
            }
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(backup))
        {
            var target = Path.Combine(configPath, Path.GetFileName(entry));
            if (Directory.Exists(entry))
            {
                Directory.Move(entry, target);
            }
            else
            {
                File.Move(entry, target);
            }
        }

        Directory.Delete(backup);
        return true;
    }

    /// <summary>The hosts.toml text: our mirrors first, then the hosts an existing file had, then the upstream as server.</summary>
    public static string Render(string registry, IReadOnlyList<Uri> mirrors, bool resolveTags, TimeSpan dialTimeout, string? existing)
    {
        ArgumentNullException.ThrowIfNull(mirrors);
        var (existingServer, existingHosts) = SplitExisting(existing);
        var text = new StringBuilder();
        text.Append("# Written by spegel configure-containerd: this node's mirror first, then the upstream.\n");
        if (registry != DefaultRegistry)
        {
            text.Append(CultureInfo.InvariantCulture, $"server = \"{existingServer ?? UpstreamServer(registry)}\"\n");
        }
        else if (existingServer is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"server = \"{existingServer}\"\n");
        }

        var capabilities = resolveTags ? "[\"pull\", \"resolve\"]" : "[\"pull\"]";
        foreach (var mirror in mirrors)
        {
            text.Append('\n');
            text.Append(CultureInfo.InvariantCulture, $"[host.\"{mirror.GetLeftPart(UriPartial.Authority)}\"]\n");
            text.Append(CultureInfo.InvariantCulture, $"  capabilities = {capabilities}\n");
            text.Append(CultureInfo.InvariantCulture, $"  dial_timeout = \"{FormatDuration(dialTimeout)}\"\n");
        }

        if (existingHosts.Length > 0)
        {
            text.Append('\n');
            text.Append(existingHosts.TrimEnd('\n'));
            text.Append('\n');
        }

        return text.ToString();
    }

    /// <summary>Go duration syntax as containerd parses it: 200ms, 2s, 1m30s.</summary>
    internal static string FormatDuration(TimeSpan duration)
    {
        if (duration.TotalSeconds < 1 || duration.Milliseconds != 0)
        {
            return $"{(long)duration.TotalMilliseconds}ms";
        }

        return duration.TotalMinutes >= 1 && duration.Seconds == 0 ? $"{(long)duration.TotalMinutes}m" : $"{(long)duration.TotalSeconds}s";
    }

    /// <summary>An existing file's top-level <c>server</c> and its tables (host sections) as text, kept verbatim.</summary>
    private static (string? Server, string Hosts) SplitExisting(string? existing)
    {
        if (string.IsNullOrWhiteSpace(existing))
        {
            return (null, string.Empty);
        }

        string? server = null;
        var hosts = new StringBuilder();
        var inTables = false;
        foreach (var raw in existing.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith('['))
            {
                inTables = true;
            }

            if (inTables)
            {
                hosts.Append(raw).Append('\n');
            }
            else if (line.StartsWith("server", StringComparison.Ordinal) && line.Contains('=', StringComparison.Ordinal))
            {
                server = line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim().Trim('"');
            }
        }

        return (server, hosts.ToString());
    }

    private static string? ReadExisting(string backup, string registry)
    {
        var path = Path.Combine(backup, registry, FileName);
        return File.Exists(path) ? File.ReadAllText(path) : null;
    }

    private static void BackUp(string configPath, string backup)
    {
        var staging = backup + ".tmp";
        if (Directory.Exists(staging))
        {
            Directory.Delete(staging, recursive: true);
        }

        Directory.CreateDirectory(staging);
        foreach (var entry in Directory.EnumerateFileSystemEntries(configPath))
        {
            var name = Path.GetFileName(entry);
            if (name == Path.GetFileName(staging))
            {
                continue;
            }

            CopyEntry(entry, Path.Combine(staging, name));
        }

        Directory.Move(staging, backup);
    }

    private static void CopyCompanionFiles(string from, string to)
    {
        if (!Directory.Exists(from))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles(from))
        {
            if (Path.GetFileName(file) != FileName)
            {
                File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
            }
        }
    }

    private static void CopyEntry(string source, string target)
    {
        if (Directory.Exists(source))
        {
            Directory.CreateDirectory(target);
            foreach (var child in Directory.EnumerateFileSystemEntries(source))
            {
                CopyEntry(child, Path.Combine(target, Path.GetFileName(child)));
            }
        }
        else
        {
            File.Copy(source, target, overwrite: true);
        }
    }

    private static void WriteAtomically(string path, string content)
    {
        var temporary = path + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        try
        {
            File.WriteAllText(temporary, content, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    private static void EnsureWritable(string directory)
    {
        var probe = Path.Combine(directory, ".spegel-write-check-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        try
        {
            File.WriteAllText(probe, string.Empty);
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"cannot write to {directory}: {ex.Message}", ex);
        }
    }

    private static bool IsRegistryHost(string registry)
    {
        if (string.IsNullOrWhiteSpace(registry) || registry.Contains('/', StringComparison.Ordinal) || registry.Contains("://", StringComparison.Ordinal))
        {
            return false;
        }

        var host = registry;
        var colon = registry.LastIndexOf(':');
        if (colon > 0)
        {
            if (!int.TryParse(registry[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                return false;
            }

            host = registry[..colon];
        }

        return Uri.CheckHostName(host) != UriHostNameType.Unknown;
    }
}
