using Spegel.Cli;

namespace Spegel.Cli.Tests;

public sealed class ConfigureContainerdTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("spegel-hosts-").FullName;

    private string ConfigPath => Path.Combine(root, "certs.d");

    public void Dispose() => Directory.Delete(root, recursive: true);

    private static string Golden(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "testdata", "hosts", name));

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
}
