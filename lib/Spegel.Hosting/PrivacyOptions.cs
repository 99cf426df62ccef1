using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Spegel.Core.Content;

namespace Spegel.Hosting;

/// <summary>Content kept off the peer path (<c>Spegel:PrivateRepositories</c>): see docs/security.md.</summary>
public sealed class PrivacyOptions : IValidatableOptions
{
    public const string SectionName = "Spegel";

    /// <summary>Regular expressions on <c>registry/repository</c>; matching content is never advertised or served to peers.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1819", Justification = "An array binds under Native AOT, a get-only List does not (tests/Spegel.Aot.Tests).")]
    public string[] PrivateRepositories { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        foreach (var pattern in PrivateRepositories)
        {
            string? error = null;
            try
            {
                _ = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
            }
            catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
            {
                error = $"Spegel:PrivateRepositories entry '{pattern}' is not a usable regular expression (no backreferences or lookarounds): {ex.Message}";
            }

            if (error is not null)
            {
                yield return error;
            }
        }
    }
}

/// <summary>Registers <see cref="PrivateContentPolicy"/> from <see cref="PrivacyOptions"/>.</summary>
public static class PrivacyServiceCollectionExtensions
{
    public static IServiceCollection AddPrivateContentPolicy(this IServiceCollection services)
    {
        services.AddValidatedOptions<PrivacyOptions>(PrivacyOptions.SectionName);
        services.AddSingleton(sp => new PrivateContentPolicy(sp.GetRequiredService<IOptions<PrivacyOptions>>().Value.PrivateRepositories));
        return services;
    }
}
