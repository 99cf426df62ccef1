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
/// What <see cref="ContainerdHostsConfig.Apply"/> did: the hosts.toml files written for the requested registries, the
/// registry directories removed (replace mode with <c>_default</c>) and the other registries' hosts.toml files our
/// mirror was prepended to (prepend mode with <c>_default</c>).
/// </summary>
public sealed record HostsConfigResult(IReadOnlyList<string> Written, IReadOnlyList<string> Removed, IReadOnlyList<string> Extended);

/// <summary>
/// Writes containerd's registry host configuration (<c>&lt;config_path&gt;/&lt;registry&gt;/hosts.toml</c>) so the node's
/// mirror is tried first and the upstream last: the mirror targets with <c>pull</c> (and <c>resolve</c> when tags are
/// resolved) and a short <c>dial_timeout</c>, then the registry's own <c>server</c>. Existing configuration is backed
/// up once to <c>_backup</c>, kept after our mirrors with <c>PrependExisting</c>, and restored by <see cref="Cleanup"/>.
/// Every file is first written to a temporary name; only when all of them were written are they renamed into place,
/// so a failure leaves the previous tree as it was and no temporary file behind.
/// </summary>
public static class ContainerdHostsConfig
{
    public const string DefaultRegistry = "_default";
    public const string BackupDirectory = "_backup";
    public const string FileName = "hosts.toml";

    /// <summary>The first line of every file we write: how a directory we wrote is told from one an operator wrote.</summary>
    public const string Header = "# Written by spegel configure-containerd: this node's mirror first, then the upstream.";

    /// <summary>The config path must be absolute: the init container and cleanup run in other working directories.</summary>
    public static string? ValidateConfigPath(string configPath) =>
        string.IsNullOrWhiteSpace(configPath) || !Path.IsPathRooted(configPath)
            ? $"--config-path must be an absolute directory, not '{configPath}'."
            : null;

    /// <summary>Checks the request; every problem is returned, none thrown.</summary>
    public static IReadOnlyList<string> Validate(HostsConfigRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new List<string>();
        if (ValidateConfigPath(request.ConfigPath) is { } pathError)
        {
            errors.Add(pathError);
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

    /// <summary>
    /// Writes one hosts.toml per registry (or <c>_default</c>). containerd uses the first directory that exists for a
    /// host (<c>&lt;host&gt;</c>, then <c>_default</c>), so with <c>_default</c> an operator's <c>docker.io/</c> would
    /// silently keep docker.io away from the mirror. Without <c>PrependExisting</c> (replace mode) every other registry
    /// directory is therefore removed afterwards; with it, our mirror is prepended to every other registry directory's
    /// hosts.toml as for a named registry (its hosts, server and certificate files kept after ours). Either way the
    /// operator's files are in <c>_backup</c>, so <see cref="Cleanup"/> brings them back. With named registries no
    /// other directory shadows ours, and the others' configuration is left alone.
    /// </summary>
    public static HostsConfigResult Apply(HostsConfigRequest request)
    {
        var errors = Validate(request);
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors));
        }

        Directory.CreateDirectory(request.ConfigPath);
        EnsureWritable(request.ConfigPath);
        var backup = Path.Combine(request.ConfigPath, BackupDirectory);
        var backedUpNow = !Directory.Exists(backup);
        if (backedUpNow)
        {
            BackUp(request.ConfigPath, backup);
        }

        var registries = request.Registries.Count == 0 ? [DefaultRegistry] : request.Registries.Distinct(StringComparer.Ordinal).ToList();
        var shadowing = request.PrependExisting && request.Registries.Count == 0 ? ShadowingRegistries(request.ConfigPath) : [];
        var files = new List<StagedFile>();
        foreach (var registry in registries.Concat(shadowing))
        {
            var directory = Path.Combine(request.ConfigPath, registry);
            string? existing = null;
            if (request.PrependExisting)
            {
                existing = ReadExisting(backup, registry);
                if (existing is null && OperatorsHostsFile(directory) is { } current)
                {
                    // Added after the backup was taken: cleanup must bring the operator's version back, so it is
                    // saved into the backup in the same all-or-nothing step that prepends to it.
                    existing = File.ReadAllText(current);
                    files.AddRange(FilesBelow(directory, Path.Combine(backup, registry)));
                }
                else
                {
                    files.AddRange(CompanionFiles(Path.Combine(backup, registry), directory));
                }
            }

            var content = Render(registry, request.MirrorTargets, request.ResolveTags, request.DialTimeout, existing);
            files.Add(new StagedFile(Path.Combine(directory, FileName), Encoding.UTF8.GetBytes(content)));
        }

        var transaction = new FileTransaction(files);
        try
        {
            transaction.Stage();
            transaction.Commit();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            transaction.Abandon();
            if (backedUpNow)
            {
                // The tree is what it was before this run, so the backup taken by this run is not needed.
                Directory.Delete(backup, recursive: true);
            }

            throw new IOException($"{ex.Message} Nothing was changed in {request.ConfigPath}.", ex);
        }

        var removed = !request.PrependExisting && request.Registries.Count == 0
            ? RemoveShadowingDirectories(request.ConfigPath, backup)
            : [];
        var written = registries.Select(r => Path.Combine(request.ConfigPath, r, FileName)).ToList();
        var extended = shadowing.Select(r => Path.Combine(request.ConfigPath, r, FileName)).ToList();
        return new HostsConfigResult(written, removed, extended);
    }

    /// <summary>Restores the configuration saved before the first <see cref="Apply"/>; false when there is no backup.</summary>
    public static bool Cleanup(string configPath)
    {
        if (ValidateConfigPath(configPath) is { } error)
        {
            throw new ArgumentException(error, nameof(configPath));
        }

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
        var (existingServer, existingTopLevel, existingHosts) = SplitExisting(existing);
        var text = new StringBuilder();
        text.Append(Header).Append('\n');
        if (registry != DefaultRegistry)
        {
            text.Append(CultureInfo.InvariantCulture, $"server = \"{existingServer ?? UpstreamServer(registry)}\"\n");
        }
        else if (existingServer is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"server = \"{existingServer}\"\n");
        }

        // The server's own settings (ca, skip_verify, capabilities, …) must stay above the first table to stay its own.
        text.Append(existingTopLevel);

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

    /// <summary>
    /// An existing file's top-level <c>server</c>, its other top-level lines (the server's settings, comments) and its
    /// tables (host sections), the last two as text kept verbatim.
    /// </summary>
    private static (string? Server, string TopLevel, string Hosts) SplitExisting(string? existing)
    {
        if (string.IsNullOrWhiteSpace(existing))
        {
            return (null, string.Empty, string.Empty);
        }

        string? server = null;
        var topLevel = new StringBuilder();
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
                server = line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim().Trim('"', '\'');
            }
            else if (line.Length > 0)
            {
                topLevel.Append(raw).Append('\n');
            }
        }

        return (server, topLevel.ToString(), hosts.ToString());
    }

    private static string? ReadExisting(string backup, string registry)
    {
        var path = Path.Combine(backup, registry, FileName);
        return File.Exists(path) ? File.ReadAllText(path) : null;
    }

    /// <summary>
    /// The registry directories that would be used instead of <c>_default</c>, in order: every directory but
    /// <c>_default</c> and the backup that has a hosts.toml file. One without it leaves containerd's defaults for that
    /// host in place, and is left alone.
    /// </summary>
    private static List<string> ShadowingRegistries(string configPath) =>
        Directory.EnumerateDirectories(configPath)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(name => name is not (DefaultRegistry or BackupDirectory) && File.Exists(Path.Combine(configPath, name, FileName)))
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>The directory's hosts.toml when an operator wrote it (not one of ours); null otherwise.</summary>
    private static string? OperatorsHostsFile(string directory)
    {
        var path = Path.Combine(directory, FileName);
        return File.Exists(path) && !WrittenByUs(directory) ? path : null;
    }

    /// <summary>Every file below <paramref name="from"/>, staged to the same relative path below <paramref name="to"/>.</summary>
    private static List<StagedFile> FilesBelow(string from, string to) =>
        Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories)
            .Select(file => new StagedFile(Path.Combine(to, Path.GetRelativePath(from, file)), File.ReadAllBytes(file)))
            .ToList();

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

    private static List<StagedFile> CompanionFiles(string from, string to) =>
        Directory.Exists(from)
            ? Directory.EnumerateFiles(from)
                .Where(file => Path.GetFileName(file) != FileName)
                .Select(file => new StagedFile(Path.Combine(to, Path.GetFileName(file)), File.ReadAllBytes(file)))
                .ToList()
            : [];

    /// <summary>
    /// Removes every registry directory except <c>_default</c> and the backup, returning them in order. One that is
    /// not in the backup (added after the first run) is copied there first, unless we wrote it (an earlier run with
    /// <c>--registry</c>): cleanup must restore the operator's configuration, never ours.
    /// </summary>
    private static List<string> RemoveShadowingDirectories(string configPath, string backup)
    {
        var removed = new List<string>();
        foreach (var directory in Directory.EnumerateDirectories(configPath).Order(StringComparer.Ordinal).ToList())
        {
            var name = Path.GetFileName(directory);
            if (name is DefaultRegistry or BackupDirectory)
            {
                continue;
            }

            var saved = Path.Combine(backup, name);
            if (!Directory.Exists(saved) && !WrittenByUs(directory))
            {
                CopyEntry(directory, saved);
            }

            Directory.Delete(directory, recursive: true);
            removed.Add(directory);
        }

        return removed;
    }

    private static bool WrittenByUs(string directory)
    {
        var hosts = Path.Combine(directory, FileName);
        if (!File.Exists(hosts))
        {
            return false;
        }

        using var reader = new StreamReader(hosts);
        return reader.ReadLine() == Header;
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

/// <summary>One file to write: its final path and its bytes.</summary>
internal sealed record StagedFile(string Path, byte[] Content);

/// <summary>
/// Writes a set of files all or nothing: <see cref="Stage"/> writes each to a temporary name next to its target,
/// <see cref="Commit"/> renames them into place only once all were written (and puts back what it had replaced if a
/// rename fails), <see cref="Abandon"/> removes the temporary files and the directories staging created.
/// </summary>
internal sealed class FileTransaction(IReadOnlyList<StagedFile> files)
{
    private readonly string suffix = ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
    private readonly List<string> createdDirectories = [];
    private readonly List<string> temporaries = [];
    private readonly List<(string Path, byte[]? Previous)> committed = [];

    public void Stage()
    {
        foreach (var file in files)
        {
            if (Directory.Exists(file.Path))
            {
                throw new IOException($"cannot write {file.Path}: a directory is in the way.");
            }

            CreateDirectory(System.IO.Path.GetDirectoryName(file.Path)!);
            var temporary = file.Path + suffix;
            temporaries.Add(temporary);
            try
            {
                File.WriteAllBytes(temporary, file.Content);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"cannot write {file.Path}: {ex.Message}", ex);
            }
        }
    }

    public void Commit()
    {
        foreach (var file in files)
        {
            var previous = File.Exists(file.Path) ? File.ReadAllBytes(file.Path) : null;
            try
            {
                File.Move(file.Path + suffix, file.Path, overwrite: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                RollBack();
                throw new IOException($"cannot write {file.Path}: {ex.Message}", ex);
            }

            committed.Add((file.Path, previous));
        }
    }

    public void Abandon()
    {
        foreach (var temporary in temporaries.Where(File.Exists))
        {
            File.Delete(temporary);
        }

        foreach (var directory in Enumerable.Reverse(createdDirectories))
        {
            if (Directory.Exists(directory) && !Directory.EnumerateFileSystemEntries(directory).Any())
            {
                Directory.Delete(directory);
            }
        }
    }

    private void RollBack()
    {
        foreach (var (path, previous) in Enumerable.Reverse(committed))
        {
            if (previous is null)
            {
                File.Delete(path);
            }
            else
            {
                File.WriteAllBytes(path, previous);
            }
        }

        committed.Clear();
    }

    private void CreateDirectory(string directory)
    {
        if (Directory.Exists(directory))
        {
            return;
        }

        CreateDirectory(System.IO.Path.GetDirectoryName(directory)!);
        Directory.CreateDirectory(directory);
        createdDirectories.Add(directory);
    }
}
