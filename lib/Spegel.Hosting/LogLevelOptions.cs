using Microsoft.Extensions.Configuration;
using Serilog;
using Serilog.Events;

namespace Spegel.Hosting;

/// <summary>
/// The log levels operators set: <c>Serilog:MinimumLevel:Default</c> (or <c>Serilog:MinimumLevel</c> itself) and
/// <c>Serilog:MinimumLevel:Override:&lt;category&gt;</c>, read here rather than by Serilog.Settings.Configuration,
/// which scans assemblies at start (no Native AOT, and seconds of start-up for two keys). A level that is not one of
/// Serilog's is an <c>invalid configuration</c> line like any other bad option.
/// </summary>
public sealed class LogLevelOptions : IValidatableOptions
{
    public const string SectionName = "Serilog:MinimumLevel";

    public IConfiguration? Configuration { get; set; }

    public IEnumerable<string> Validate()
    {
        if (Configuration is null)
        {
            yield break;
        }

        foreach (var (key, value) in Levels(Configuration))
        {
            if (!TryParse(value, out _))
            {
                yield return $"{key} must be one of {string.Join(", ", Enum.GetNames<LogEventLevel>())}, not '{value}'.";
            }
        }
    }

    internal static IEnumerable<(string Key, string Value)> Levels(IConfiguration configuration)
    {
        var section = configuration.GetSection(SectionName);
        if (section.Value is { } whole)
        {
            yield return (SectionName, whole);
        }

        if (section["Default"] is { } level)
        {
            yield return (SectionName + ":Default", level);
        }

        foreach (var child in section.GetSection("Override").GetChildren())
        {
            if (child.Value is { } value)
            {
                yield return (child.Path, value);
            }
        }
    }

    internal static bool TryParse(string? value, out LogEventLevel level) =>
        Enum.TryParse(value, ignoreCase: true, out level) && Enum.IsDefined(level);
}

public static class LogLevelConfigurationExtensions
{
    /// <summary>Applies the configured levels; invalid ones are skipped here and reported by <see cref="LogLevelOptions"/>.</summary>
    public static LoggerConfiguration ApplyConfiguredLevels(this LoggerConfiguration logger, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(configuration);
        var overridePrefix = LogLevelOptions.SectionName + ":Override:";
        foreach (var (key, value) in LogLevelOptions.Levels(configuration))
        {
            if (!LogLevelOptions.TryParse(value, out var level))
            {
                continue;
            }

            if (key.StartsWith(overridePrefix, StringComparison.OrdinalIgnoreCase))
            {
                logger.MinimumLevel.Override(key[overridePrefix.Length..], level);
            }
            else
            {
                logger.MinimumLevel.Is(level);
            }
        }

        return logger;
    }
}
