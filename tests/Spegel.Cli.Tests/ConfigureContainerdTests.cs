using Spegel.Cli;

namespace Spegel.Cli.Tests;

public sealed class ConfigureContainerdTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("spegel-hosts-").FullName;

    private string ConfigPath => Path.Combine(root, "certs.d");

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static string Golden(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "testdata", "hosts", name));

    /// <summary>Every file and directory below <paramref name="directory"/>: relative path to content ("&lt;dir&gt;" for directories).</summary>
    private static SortedDictionary<string, string> Tree(string directory) =>
        new(
            Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories)
                .ToDictionary(e => Path.GetRelativePath(directory, e), e => Directory.Exists(e) ? "<dir>" : File.ReadAllText(e), StringComparer.Ordinal),
            StringComparer.Ordinal);

    private void WriteFile(string relative, string content)
    {
        var path = Path.Combine(ConfigPath, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = ConfigureContainerdCommand.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("docker-io.toml", "docker.io", "http://127.0.0.1:30020", "true")]
    [InlineData("ghcr-io-pull-only.toml", "ghcr.io", "http://127.0.0.1:30020", "false")]
    [InlineData("private-port.toml", "registry.example.com:5000", "https://mirror.local:30021", "true")]
    public void Apply_OneRegistry_MatchesGolden(string golden, string registry, string target, string resolveTags)
    {
        var (code, _, err) = Run("--config-path", ConfigPath, "--registry", registry, "--mirror-target", target, "--resolve-tags", resolveTags);

        Assert.Equal(0, code);
        Assert.Empty(err);
        Assert.Equal(Golden(golden), File.ReadAllText(Path.Combine(ConfigPath, registry, "hosts.toml")));
    }

    [Fact]
    public void Apply_NoRegistry_WritesDefaultWithEveryTargetInOrder()
    {
        var (code, _, _) = Run("--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", "--mirror-target", "http://127.0.0.1:30021", "--dial-timeout", "2s");

        Assert.Equal(0, code);
        Assert.Equal(Golden("default-two-targets.toml"), File.ReadAllText(Path.Combine(ConfigPath, "_default", "hosts.toml")));
    }

    [Fact]
    public void Apply_PrependExisting_KeepsExistingHostsServerAndCertificatesAfterOurs()
    {
        var existing = Path.Combine(ConfigPath, "docker.io");
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "hosts.toml"), Golden("existing-docker-io.toml"));
        File.WriteAllText(Path.Combine(existing, "ca.crt"), "CERT");

        var (code, _, _) = Run("--config-path", ConfigPath, "--registry", "docker.io", "--mirror-target", "http://127.0.0.1:30020", "--prepend-existing");

        Assert.Equal(0, code);
        Assert.Equal(Golden("prepended-docker-io.toml"), File.ReadAllText(Path.Combine(existing, "hosts.toml")));
        Assert.Equal("CERT", File.ReadAllText(Path.Combine(existing, "ca.crt")));
    }

    [Fact]
    public void Apply_Twice_IsIdempotentAndBacksUpOnlyTheOriginal()
    {
        var existing = Path.Combine(ConfigPath, "docker.io");
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "hosts.toml"), Golden("existing-docker-io.toml"));
        string[] args = ["--config-path", ConfigPath, "--registry", "docker.io", "--mirror-target", "http://127.0.0.1:30020", "--prepend-existing"];

        Run(args);
        var first = File.ReadAllText(Path.Combine(existing, "hosts.toml"));
        Run(args);

        Assert.Equal(first, File.ReadAllText(Path.Combine(existing, "hosts.toml")));
        Assert.Equal(Golden("existing-docker-io.toml"), File.ReadAllText(Path.Combine(ConfigPath, "_backup", "docker.io", "hosts.toml")));
    }

    [Fact]
    public void Cleanup_AfterApply_RestoresTheOriginalTreeExactly()
    {
        var existing = Path.Combine(ConfigPath, "docker.io");
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "hosts.toml"), Golden("existing-docker-io.toml"));
        File.WriteAllText(Path.Combine(existing, "ca.crt"), "CERT");
        Run("--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", "--registry", "docker.io", "--registry", "ghcr.io");

        var (code, output, _) = Run("cleanup", "--config-path", ConfigPath);

        Assert.Equal(0, code);
        Assert.Contains("restored", output, StringComparison.Ordinal);
        Assert.Equal(["docker.io"], Directory.GetFileSystemEntries(ConfigPath).Select(Path.GetFileName));
        Assert.Equal(Golden("existing-docker-io.toml"), File.ReadAllText(Path.Combine(existing, "hosts.toml")));
        Assert.Equal("CERT", File.ReadAllText(Path.Combine(existing, "ca.crt")));
    }

    [Fact]
    public void Cleanup_WithoutBackup_SaysSoAndChangesNothing()
    {
        Directory.CreateDirectory(ConfigPath);
        var (code, output, _) = Run("cleanup", "--config-path", ConfigPath);
        Assert.Equal(0, code);
        Assert.Contains("nothing to restore", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--mirror-target", "not a url", "must be an http or https URL")]
    [InlineData("--mirror-target", "ftp://127.0.0.1:21", "must be an http or https URL")]
    [InlineData("--mirror-target", "http://127.0.0.1:30020/v2", "with no path")]
    [InlineData("--registry", "https://docker.io", "must be a registry host")]
    [InlineData("--registry", "docker.io/library", "must be a registry host")]
    [InlineData("--registry", "host:99999", "must be a registry host")]
    [InlineData("--dial-timeout", "soon", "--dial-timeout must be a duration")]
    [InlineData("--resolve-tags", "maybe", "--resolve-tags must be true or false")]
    [InlineData("--bogus", "x", "unknown argument")]
    public void Apply_InvalidInput_ClearErrorAndNothingWritten(string flag, string value, string expected)
    {
        string[] args = flag == "--mirror-target"
            ? ["--config-path", ConfigPath, flag, value]
            : ["--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", flag, value];

        var (code, _, err) = Run(args);

        Assert.Equal(2, code);
        Assert.Contains(expected, err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(ConfigPath));
    }

    [Fact]
    public void Apply_NoTarget_AsksForOne()
    {
        var (code, _, err) = Run("--config-path", ConfigPath);
        Assert.Equal(2, code);
        Assert.Contains("at least one --mirror-target", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Apply_UnwritableConfigPath_ClearErrorAndNoPartialFiles()
    {
        var blocker = Path.Combine(root, "a-file");
        File.WriteAllText(blocker, string.Empty);
        var configPath = Path.Combine(blocker, "certs.d");

        var (code, _, err) = Run("--config-path", configPath, "--mirror-target", "http://127.0.0.1:30020");

        Assert.Equal(1, code);
        Assert.Contains(configPath, err, StringComparison.Ordinal);
        Assert.Equal([blocker], Directory.GetFileSystemEntries(root));
    }

    [Theory]
    [InlineData("200ms", 200)]
    [InlineData("2s", 2000)]
    [InlineData("1.5s", 1500)]
    [InlineData("1m", 60000)]
    public void TryParseDuration_GoStyle_Parses(string text, int ms)
    {
        Assert.True(ConfigureContainerdCommand.TryParseDuration(text, out var d));
        Assert.Equal(TimeSpan.FromMilliseconds(ms), d);
    }

    /// <summary>
    /// containerd uses <c>&lt;host&gt;/</c> before <c>_default/</c>: with every registry mirrored, an operator's
    /// docker.io directory would keep docker.io away from the mirror, so replace mode removes it, says so, and
    /// cleanup puts it back byte for byte.
    /// </summary>
    [Fact]
    public void Apply_DefaultReplace_RemovesEveryOtherRegistryDirectoryNamingEachAndCleanupRestoresThem()
    {
        WriteFile("docker.io/hosts.toml", Golden("existing-docker-io.toml"));
        WriteFile("docker.io/ca.crt", "CERT");
        WriteFile("quay.io/hosts.toml", "server = \"https://quay.example.com\"\n");
        WriteFile("notes.txt", "top-level files are no registry configuration");
        var before = Tree(ConfigPath);

        var (code, output, err) = Run("--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", "--mirror-target", "http://127.0.0.1:30021", "--dial-timeout", "2s");

        Assert.True(code == 0, err);
        Assert.Equal(Golden("default-two-targets.toml"), File.ReadAllText(Path.Combine(ConfigPath, "_default", "hosts.toml")));
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Single(lines, l => l.StartsWith($"removed {Path.Combine(ConfigPath, "docker.io")}: ", StringComparison.Ordinal));
        Assert.Single(lines, l => l.StartsWith($"removed {Path.Combine(ConfigPath, "quay.io")}: ", StringComparison.Ordinal));
        Assert.Equal(2, lines.Count(l => l.StartsWith("removed ", StringComparison.Ordinal)));
        Assert.Equal(["_backup", "_default", "notes.txt"], Directory.GetFileSystemEntries(ConfigPath).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        var (cleanupCode, _, cleanupErr) = Run("cleanup", "--config-path", ConfigPath);

        Assert.True(cleanupCode == 0, cleanupErr);
        Assert.Equal(before, Tree(ConfigPath));
    }

    /// <summary>
    /// A directory the operator added after the first run is not in the backup: it is saved there before removal.
    /// One an earlier run of ours wrote (--registry quay.io) is removed and not saved: cleanup must not bring back our mirror.
    /// </summary>
    [Fact]
    public void Apply_DefaultReplace_AfterEarlierRuns_SavesTheOperatorsNewDirectoryButNotOurs()
    {
        WriteFile("docker.io/hosts.toml", Golden("existing-docker-io.toml"));
        var original = Tree(ConfigPath);
        Assert.Equal(0, Run("--config-path", ConfigPath, "--registry", "quay.io", "--mirror-target", "http://127.0.0.1:30020").Code);
        WriteFile("ghcr.io/hosts.toml", "server = \"https://ghcr.example.com\"\n");

        var (code, output, err) = Run("--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020");

        Assert.True(code == 0, err);
        foreach (var registry in new[] { "docker.io", "ghcr.io", "quay.io" })
        {
            Assert.Contains($"removed {Path.Combine(ConfigPath, registry)}: ", output, StringComparison.Ordinal);
        }

        Assert.Equal(["_backup", "_default"], Directory.GetFileSystemEntries(ConfigPath).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(0, Run("cleanup", "--config-path", ConfigPath).Code);
        var expected = new SortedDictionary<string, string>(original, StringComparer.Ordinal)
        {
            ["ghcr.io"] = "<dir>",
            [Path.Combine("ghcr.io", "hosts.toml")] = "server = \"https://ghcr.example.com\"\n",
        };
        Assert.Equal(expected, Tree(ConfigPath));
    }

    /// <summary>
    /// --prepend-existing with every registry mirrored (_default): containerd would use docker.io/ instead of _default,
    /// so our mirror goes first in docker.io's own hosts.toml, exactly as for --registry docker.io, with its hosts,
    /// server and certificate after ours. A directory without hosts.toml and top-level files are left alone; a second
    /// run changes nothing; cleanup restores the original tree byte for byte.
    /// </summary>
    [Fact]
    public void Apply_DefaultPrepend_PrependsToEveryRegistryDirectoryIdempotentlyAndCleanupRestoresIt()
    {
        WriteFile("docker.io/hosts.toml", Golden("existing-docker-io.toml"));
        WriteFile("docker.io/ca.crt", "CERT");
        WriteFile("quay.io/ca.crt", "QUAY CERT, no hosts.toml: containerd's defaults for quay.io, with this CA");
        WriteFile("notes.txt", "top-level files are no registry configuration");
        var before = Tree(ConfigPath);
        string[] args = ["--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", "--prepend-existing"];

        var (code, output, err) = Run(args);

        Assert.True(code == 0, err);
        Assert.Equal(Golden("default-one-target.toml"), File.ReadAllText(Path.Combine(ConfigPath, "_default", "hosts.toml")));
        Assert.Equal(Golden("prepended-docker-io.toml"), File.ReadAllText(Path.Combine(ConfigPath, "docker.io", "hosts.toml")));
        Assert.Equal("CERT", File.ReadAllText(Path.Combine(ConfigPath, "docker.io", "ca.crt")));
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(
            [
                $"wrote {Path.Combine(ConfigPath, "_default", "hosts.toml")}",
                $"extended {Path.Combine(ConfigPath, "docker.io", "hosts.toml")}: our mirror first, its hosts and server after (it would be used instead of _default; cleanup restores it)",
            ],
            lines);
        var expected = new SortedDictionary<string, string>(before, StringComparer.Ordinal)
        {
            ["_default"] = "<dir>",
            [Path.Combine("_default", "hosts.toml")] = Golden("default-one-target.toml"),
            [Path.Combine("docker.io", "hosts.toml")] = Golden("prepended-docker-io.toml"),
            ["_backup"] = "<dir>",
        };
        foreach (var (path, content) in before)
        {
            expected[Path.Combine("_backup", path)] = content;
        }

        var first = Tree(ConfigPath);
        Assert.Equal(expected, first);

        var (again, againOutput, againErr) = Run(args);

        Assert.True(again == 0, againErr);
        Assert.Equal(output, againOutput);
        Assert.Equal(first, Tree(ConfigPath));
        Assert.Single(Golden("prepended-docker-io.toml").Split('\n'), l => l.Contains("127.0.0.1:30020", StringComparison.Ordinal));

        Assert.Equal(0, Run("cleanup", "--config-path", ConfigPath).Code);
        Assert.Equal(before, Tree(ConfigPath));
    }

    /// <summary>
    /// A registry directory the operator added after the first run is not in the backup: it is saved there in the same
    /// step that prepends to it, so later runs stay idempotent and cleanup restores the operator's file, not ours.
    /// A directory an earlier run of ours wrote (--registry quay.io) gets the current mirror and is not saved.
    /// </summary>
    [Fact]
    public void Apply_DefaultPrepend_AfterEarlierRuns_SavesTheOperatorsNewDirectoryAndPrependsToIt()
    {
        WriteFile("notes.txt", "x");
        var original = Tree(ConfigPath);
        Assert.Equal(0, Run("--config-path", ConfigPath, "--registry", "quay.io", "--mirror-target", "http://127.0.0.1:30020").Code);
        WriteFile("ghcr.io/hosts.toml", "server = \"https://ghcr.example.com\"\n\n[host.\"https://ghcr-cache.example.com\"]\n  capabilities = [\"pull\"]\n");
        WriteFile("ghcr.io/client.pem", "PEM");
        string[] args = ["--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30021", "--resolve-tags", "false", "--prepend-existing"];

        var (code, output, err) = Run(args);

        Assert.True(code == 0, err);
        Assert.Contains($"extended {Path.Combine(ConfigPath, "ghcr.io", "hosts.toml")}: ", output, StringComparison.Ordinal);
        Assert.Contains($"extended {Path.Combine(ConfigPath, "quay.io", "hosts.toml")}: ", output, StringComparison.Ordinal);
        Assert.Equal(
            """
            # Written by spegel configure-containerd: this node's mirror first, then the upstream.
            server = "https://ghcr.example.com"

            [host."http://127.0.0.1:30021"]
              capabilities = ["pull"]
              dial_timeout = "200ms"

            [host."https://ghcr-cache.example.com"]
              capabilities = ["pull"]

            """.ReplaceLineEndings("\n"),
            File.ReadAllText(Path.Combine(ConfigPath, "ghcr.io", "hosts.toml")));
        Assert.Equal(
            """
            # Written by spegel configure-containerd: this node's mirror first, then the upstream.
            server = "https://quay.io"

            [host."http://127.0.0.1:30021"]
              capabilities = ["pull"]
              dial_timeout = "200ms"

            """.ReplaceLineEndings("\n"),
            File.ReadAllText(Path.Combine(ConfigPath, "quay.io", "hosts.toml")));
        Assert.Equal("PEM", File.ReadAllText(Path.Combine(ConfigPath, "ghcr.io", "client.pem")));
        Assert.Equal("PEM", File.ReadAllText(Path.Combine(ConfigPath, "_backup", "ghcr.io", "client.pem")));
        Assert.False(Directory.Exists(Path.Combine(ConfigPath, "_backup", "quay.io")));
        var first = Tree(ConfigPath);

        Assert.Equal(0, Run(args).Code);
        Assert.Equal(first, Tree(ConfigPath));

        Assert.Equal(0, Run("cleanup", "--config-path", ConfigPath).Code);
        var expected = new SortedDictionary<string, string>(original, StringComparer.Ordinal)
        {
            ["ghcr.io"] = "<dir>",
            [Path.Combine("ghcr.io", "hosts.toml")] = "server = \"https://ghcr.example.com\"\n\n[host.\"https://ghcr-cache.example.com\"]\n  capabilities = [\"pull\"]\n",
            [Path.Combine("ghcr.io", "client.pem")] = "PEM",
        };
        Assert.Equal(expected, Tree(ConfigPath));
    }

    /// <summary>The server's own top-level settings (its CA, skip_verify) stay above the first table, so they stay the server's.</summary>
    [Fact]
    public void Apply_Prepend_KeepsTheServersTopLevelSettings()
    {
        WriteFile("registry.example.com/hosts.toml", "server = 'https://registry.example.com'\nca = \"ca.crt\"\nskip_verify = false\n");

        var (code, _, err) = Run("--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", "--prepend-existing");

        Assert.True(code == 0, err);
        Assert.Equal(
            """
            # Written by spegel configure-containerd: this node's mirror first, then the upstream.
            server = "https://registry.example.com"
            ca = "ca.crt"
            skip_verify = false

            [host."http://127.0.0.1:30020"]
              capabilities = ["pull", "resolve"]
              dial_timeout = "200ms"

            """.ReplaceLineEndings("\n"),
            File.ReadAllText(Path.Combine(ConfigPath, "registry.example.com", "hosts.toml")));
    }

    /// <summary>Prepend with _default is all or nothing too: one extended directory that cannot be saved, and nothing changes.</summary>
    [Fact]
    public void Apply_DefaultPrepend_OneDirectoryCannotBeSaved_FailsAndLeavesTheTreeAsItWas()
    {
        WriteFile("docker.io/hosts.toml", Golden("existing-docker-io.toml"));
        Assert.Equal(0, Run("--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", "--registry", "quay.io").Code);
        WriteFile("ghcr.io/hosts.toml", "server = \"https://ghcr.example.com\"\n");
        // Where ghcr.io's copy in the backup would go, a file is in the way.
        WriteFile(Path.Combine("_backup", "ghcr.io"), "in the way");
        var before = Tree(ConfigPath);

        var (code, _, err) = Run("--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", "--prepend-existing");

        Assert.Equal(1, code);
        Assert.Contains("Nothing was changed", err, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(root, "*.tmp*", SearchOption.AllDirectories));
        Assert.Equal(before, Tree(ConfigPath));
    }

    /// <summary>With named registries nothing shadows ours, and registries not mirrored keep their configuration.</summary>
    [Fact]
    public void Apply_NamedRegistriesReplace_LeavesOtherRegistriesAlone()
    {
        WriteFile("quay.io/hosts.toml", "server = \"https://quay.example.com\"\n");
        WriteFile("quay.io/ca.crt", "CERT");

        var (code, output, _) = Run("--config-path", ConfigPath, "--registry", "docker.io", "--mirror-target", "http://127.0.0.1:30020");

        Assert.Equal(0, code);
        Assert.DoesNotContain("removed", output, StringComparison.Ordinal);
        Assert.Equal("server = \"https://quay.example.com\"\n", File.ReadAllText(Path.Combine(ConfigPath, "quay.io", "hosts.toml")));
        Assert.Equal("CERT", File.ReadAllText(Path.Combine(ConfigPath, "quay.io", "ca.crt")));
        Assert.Equal(Golden("docker-io.toml"), File.ReadAllText(Path.Combine(ConfigPath, "docker.io", "hosts.toml")));
    }

    /// <summary>First run: one target cannot be written, so nothing is: no file, no directory, no backup, no temporary.</summary>
    [Fact]
    public void Apply_OneHostsTomlIsADirectory_FailsNamingItAndLeavesTheTreeAsItWas()
    {
        WriteFile("docker.io/hosts.toml", Golden("existing-docker-io.toml"));
        Directory.CreateDirectory(Path.Combine(ConfigPath, "ghcr.io", "hosts.toml"));
        var before = Tree(ConfigPath);

        var (code, _, err) = Run(
            "--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020",
            "--registry", "docker.io", "--registry", "ghcr.io", "--registry", "quay.io");

        Assert.Equal(1, code);
        Assert.Contains(Path.Combine(ConfigPath, "ghcr.io", "hosts.toml"), err, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", err, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(root, "*.tmp*", SearchOption.AllDirectories));
        Assert.Equal(before, Tree(ConfigPath));
    }

    /// <summary>A later run that fails keeps what the earlier run wrote (and its backup) exactly as it was.</summary>
    [Fact]
    public void Apply_LaterRunWithAnUnwritableTarget_KeepsTheEarlierFiles()
    {
        Assert.Equal(0, Run("--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", "--registry", "docker.io", "--registry", "quay.io").Code);
        Directory.CreateDirectory(Path.Combine(ConfigPath, "ghcr.io", "hosts.toml"));
        var before = Tree(ConfigPath);

        var (code, _, err) = Run(
            "--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30021", "--resolve-tags", "false",
            "--registry", "docker.io", "--registry", "ghcr.io", "--registry", "quay.io");

        Assert.Equal(1, code);
        Assert.Contains(Path.Combine(ConfigPath, "ghcr.io", "hosts.toml"), err, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(root, "*.tmp*", SearchOption.AllDirectories));
        Assert.Equal(before, Tree(ConfigPath));
        Assert.Equal(Golden("docker-io.toml"), File.ReadAllText(Path.Combine(ConfigPath, "docker.io", "hosts.toml")));
    }

    [Theory]
    [InlineData("relative/path")]
    [InlineData("certs.d")]
    public void Cleanup_RelativeConfigPath_IsAnErrorLikeApply(string relative)
    {
        var (code, output, err) = Run("cleanup", "--config-path", relative);
        var (applyCode, _, applyErr) = Run("--config-path", relative, "--mirror-target", "http://127.0.0.1:30020");

        Assert.Equal(2, code);
        Assert.Empty(output);
        Assert.Contains($"--config-path must be an absolute directory, not '{relative}'", err, StringComparison.Ordinal);
        Assert.Equal((applyCode, applyErr), (code, err));
        Assert.Throws<ArgumentException>(() => ContainerdHostsConfig.Cleanup(relative));
    }

    /// <summary>What docs/operations.md §5 says cleanup removes: everything in the config path but the backup, including what was added after the install.</summary>
    [Fact]
    public void Cleanup_AfterApply_RemovesEverythingNotInTheBackup()
    {
        WriteFile("docker.io/hosts.toml", Golden("existing-docker-io.toml"));
        var original = Tree(ConfigPath);
        Assert.Equal(0, Run("--config-path", ConfigPath, "--mirror-target", "http://127.0.0.1:30020", "--registry", "ghcr.io").Code);
        WriteFile("added-later/hosts.toml", "server = \"https://added.example.com\"\n");
        WriteFile("added-later.txt", "x");
        WriteFile("ghcr.io/ca.crt", "CERT added after the install");

        var (code, output, _) = Run("cleanup", "--config-path", ConfigPath);

        Assert.Equal(0, code);
        Assert.Equal($"restored {ConfigPath} from its backup", output.Trim());
        Assert.Equal(original, Tree(ConfigPath));
    }

    [Fact]
    public void Cleanup_OperationsDoc_SaysExactlyWhatItRemovesInTheUninstallSection()
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot(), "docs", "operations.md"));
        var start = text.IndexOf("\n## 5. Uninstall", StringComparison.Ordinal);
        var end = text.IndexOf("\n## 6.", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "docs/operations.md has no §5 Uninstall followed by §6");
        // Line breaks of the Markdown source do not matter.
        var section = string.Join(' ', text[start..end].Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries));

        Assert.Contains("deletes every file and directory in the config path except `_backup`", section, StringComparison.Ordinal);
        Assert.Contains("anything added there after the first install", section, StringComparison.Ordinal);
        Assert.Contains("moves the backup's contents back and deletes `_backup`", section, StringComparison.Ordinal);
        Assert.Contains("nothing to restore", section, StringComparison.Ordinal);
        Assert.Contains("a relative path is an error (exit 2)", section, StringComparison.Ordinal);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Spegel.Dapr.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Spegel.Dapr.sln above {AppContext.BaseDirectory}.");
    }
}
