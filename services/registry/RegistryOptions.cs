using System.Text.RegularExpressions;
using Spegel.Hosting;

namespace Spegel.Registry;

/// <summary>What the registry serves (<c>Spegel:MirroredRegistries</c>, <c>Spegel:RegistryFilters</c>, <c>Spegel:ResolveTags</c>).</summary>
public sealed class RegistryOptions : IValidatableOptions
{
    public const string SectionName = "Spegel";

    // NonBacktracking is linear in the input: no match timeout, which under load fired while the engine warmed up.
    private Regex[]? compiledFilters;

    /// <summary>Registries served (<c>docker.io</c>, <c>ghcr.io</c>, <c>registry.k8s.io:443</c>); empty serves every registry.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1819", Justification = "An array binds under Native AOT, a get-only List does not (tests/Spegel.Aot.Tests).")]
    public string[] MirroredRegistries { get; set; } = [];

    /// <summary>Regular expressions on <c>registry/repo:tag</c>; a match is answered 404 at once (e.g. <c>:latest$</c>).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1819", Justification = "An array binds under Native AOT, a get-only List does not (tests/Spegel.Aot.Tests).")]
    public string[] RegistryFilters { get; set; } = [];

    /// <summary>Serve manifests by tag. Off: only digests are served, and tags always go upstream.</summary>
    public bool ResolveTags { get; set; } = true;

    /// <summary>The largest manifest served; bigger ones are refused rather than buffered.</summary>
    public long MaxManifestBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// How long a client may take to send a request's headers before Kestrel closes the connection (slow-loris).
    /// containerd sends its headers in one write; only a stalled or hostile client needs longer than a second.
    /// </summary>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(10);

    internal IReadOnlyList<Regex> Filters => compiledFilters ??= RegistryFilters
        .Select(f => new Regex(f, RegexOptions.CultureInvariant | RegexOptions.NonBacktracking))
        .ToArray();

    public bool IsMirrored(string registry) =>
        MirroredRegistries.Length == 0 || MirroredRegistries.Contains(registry, StringComparer.Ordinal);

    public bool IsFiltered(string reference) => Filters.Any(f => f.IsMatch(reference));

    public IEnumerable<string> Validate()
    {
        foreach (var registry in MirroredRegistries)
        {
            if (string.IsNullOrWhiteSpace(registry) || registry.Contains('/', StringComparison.Ordinal) || registry.Contains("://", StringComparison.Ordinal)
                || Uri.CheckHostName(registry.Split(':')[0]) == UriHostNameType.Unknown)
            {
                yield return $"Spegel:MirroredRegistries entry '{registry}' must be a registry host such as docker.io or registry.example.com:5000 (no scheme, no path).";
            }
        }

        foreach (var filter in RegistryFilters)
        {
            string? error = null;
            try
            {
                _ = new Regex(filter, RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
            }
            catch (ArgumentException ex)
            {
                error = $"Spegel:RegistryFilters entry '{filter}' is not a valid regular expression: {ex.Message}";
            }
            catch (NotSupportedException ex)
            {
                error = $"Spegel:RegistryFilters entry '{filter}' uses a construct (backreference or lookaround) that is not allowed: {ex.Message}";
            }

            if (error is not null)
            {
                yield return error;
            }
        }

        if (MaxManifestBytes is < 1024 or > 64 * 1024 * 1024)
        {
            yield return $"Spegel:MaxManifestBytes must be between 1 KiB and 64 MiB, not {MaxManifestBytes}.";
        }

        if (RequestHeadersTimeout < TimeSpan.FromSeconds(1) || RequestHeadersTimeout > TimeSpan.FromMinutes(5))
        {
            yield return $"Spegel:RequestHeadersTimeout must be between 00:00:01 and 00:05:00, not '{RequestHeadersTimeout}'.";
        }
    }
}
