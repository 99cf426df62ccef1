using System.Globalization;

namespace Spegel.Cli;

/// <summary><c>spegel configure-containerd [cleanup] …</c>: writes or restores containerd's hosts.toml files.</summary>
public static class ConfigureContainerdCommand
{
    public const string Help = """
        usage: spegel configure-containerd --mirror-target URL [--mirror-target URL …] [options]
               spegel configure-containerd cleanup [--config-path DIR]

          --config-path DIR        containerd's registry config_path (default /etc/containerd/certs.d)
          --mirror-target URL      this node's registry, tried first (repeatable)
          --registry HOST          a registry to mirror (repeatable); none: all registries, through _default
          --resolve-tags BOOL      let the mirror resolve tags (capability "resolve"; default true)
          --prepend-existing       keep the hosts already configured for a mirrored registry, after ours, with
                                   their server and certificate files; with no --registry (_default), also
                                   prepend our mirror to every other registry directory's hosts.toml, which
                                   containerd would use instead of _default (each is printed). Default: replace
                                   them; and with no --registry, remove every other registry directory (each
                                   removal is printed). cleanup restores both
          --dial-timeout DURATION  how long containerd waits to connect to the mirror (default 200ms)

        The first run backs DIR up to DIR/_backup. cleanup deletes everything in DIR except _backup, moves the
        backup's contents back and deletes _backup; without a backup it changes nothing.
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var configPath = "/etc/containerd/certs.d";
        var targets = new List<Uri>();
        var registries = new List<string>();
        var resolveTags = true;
        var prepend = false;
        var dialTimeout = TimeSpan.FromMilliseconds(200);
        var cleanup = false;
        var problems = new List<string>();

        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : Missing(args[i], problems);
            switch (args[i])
            {
                case "cleanup" when i == 0:
                    cleanup = true;
                    break;
                case "--config-path":
                    configPath = Value();
                    break;
                case "--mirror-target":
                    targets.Add(ContainerdHostsConfig.ParseTarget(Value()));
                    break;
                case "--registry":
                    registries.Add(Value());
                    break;
                case "--resolve-tags":
                    var text = Value();
                    if (!bool.TryParse(text, out resolveTags))
                    {
                        problems.Add($"--resolve-tags must be true or false, not '{text}'.");
                    }

                    break;
                case "--prepend-existing":
                    prepend = true;
                    break;
                case "--dial-timeout":
                    var duration = Value();
                    if (!TryParseDuration(duration, out dialTimeout))
                    {
                        problems.Add($"--dial-timeout must be a duration like 200ms or 2s, not '{duration}'.");
                    }

                    break;
                case "-h" or "--help":
                    output.WriteLine(Help);
                    return 0;
                default:
                    problems.Add($"unknown argument '{args[i]}'.");
                    break;
            }
        }

        if (cleanup)
        {
            if (ContainerdHostsConfig.ValidateConfigPath(configPath) is { } pathProblem)
            {
                problems.Add(pathProblem);
            }

            return Report(problems, error) ?? Cleanup(configPath, output, error);
        }

        var request = new HostsConfigRequest(configPath, registries, targets, resolveTags, prepend, dialTimeout);
        problems.AddRange(ContainerdHostsConfig.Validate(request));
        if (Report(problems, error) is { } code)
        {
            return code;
        }

        try
        {
            var result = ContainerdHostsConfig.Apply(request);
            foreach (var file in result.Written)
            {
                output.WriteLine($"wrote {file}");
            }

            foreach (var file in result.Extended)
            {
                output.WriteLine($"extended {file}: our mirror first, its hosts and server after (it would be used instead of _default; cleanup restores it)");
            }

            foreach (var directory in result.Removed)
            {
                output.WriteLine($"removed {directory}: it would be used instead of _default (saved in _backup; cleanup restores it)");
            }

            return 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"configure-containerd: {ex.Message}");
            return 1;
        }
    }

    internal static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        var units = new (string Suffix, double Milliseconds)[] { ("ms", 1), ("s", 1000), ("m", 60_000) };
        foreach (var (suffix, ms) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text[..^suffix.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value)
                && value > 0)
            {
                duration = TimeSpan.FromMilliseconds(value * ms);
                return true;
            }
        }

        return false;
    }

    private static int Cleanup(string configPath, TextWriter output, TextWriter error)
    {
        try
        {
            if (ContainerdHostsConfig.Cleanup(configPath))
            {
                output.WriteLine($"restored {configPath} from its backup");
            }
            else
            {
                output.WriteLine($"nothing to restore: no backup in {configPath}");
            }

            return 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"configure-containerd cleanup: {ex.Message}");
            return 1;
        }
    }

    private static int? Report(List<string> problems, TextWriter error)
    {
        foreach (var problem in problems)
        {
            error.WriteLine($"configure-containerd: {problem}");
        }

        return problems.Count > 0 ? 2 : null;
    }

    private static string Missing(string flag, List<string> problems)
    {
        problems.Add($"{flag} needs a value.");
        return string.Empty;
    }
}
