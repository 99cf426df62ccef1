namespace Spegel.Cluster;

/// <summary>The command line after the command: <c>--name value</c> options, <c>--flag</c>s and positional arguments.</summary>
internal sealed class Options
{
    private static readonly HashSet<string> Flags = ["--keep"];
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    public List<string> Positional { get; } = [];

    public static Options Parse(IReadOnlyList<string> args)
    {
        var options = new Options();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (Flags.Contains(arg))
            {
                options._flags.Add(arg);
            }
            else if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                var eq = arg.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    options._values[arg[..eq]] = arg[(eq + 1)..];
                }
                else if (i + 1 < args.Count)
                {
                    options._values[arg] = args[++i];
                }
                else
                {
                    throw new UsageException($"{arg} needs a value");
                }
            }
            else
            {
                options.Positional.Add(arg);
            }
        }

        return options;
    }

    public bool Has(string flag) => _flags.Contains(flag);

    public string? Get(string name) => _values.GetValueOrDefault(name);

    public int GetInt(string name, int fallback, int min, int max)
    {
        var text = Get(name);
        if (text is null)
        {
            return fallback;
        }

        return int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException($"{name} must be a whole number from {min} to {max} (got '{text}')");
    }

    /// <summary>The workdir as a full path: <c>--workdir</c>, else <c>&lt;repo&gt;/.work/&lt;fallback&gt;</c>.</summary>
    public string Workdir(string fallback) => Path.GetFullPath(Get("--workdir") ?? Path.Combine(RepoRoot(), ".work", fallback));

    /// <summary>The folder holding Spegel.Dapr.sln above the tool's build output (else the current directory).</summary>
    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Spegel.Dapr.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? Environment.CurrentDirectory;
    }
}
