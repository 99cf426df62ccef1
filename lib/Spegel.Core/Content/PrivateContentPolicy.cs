using System.Text.RegularExpressions;

namespace Spegel.Core.Content;

/// <summary>
/// Which content must never travel between nodes: content pulled from private repositories with a node's own
/// credentials. containerd records where each blob came from in labels
/// (<c>containerd.io/distribution.source.&lt;registry&gt;=&lt;repo&gt;[,&lt;repo&gt;…]</c>); a blob is private when it has
/// sources and every one of them matches a pattern. A layer shared with a public image is public: anyone can get it
/// from there anyway. containerd leaves the port out of the label key (label keys cannot hold ':'), so a pattern for a
/// registry on a port should make the port optional: <c>^registry\.corp(:\d+)?/team/</c>.
/// </summary>
public sealed class PrivateContentPolicy
{
    public const string SourceLabelPrefix = "containerd.io/distribution.source.";

    // NonBacktracking runs in time linear in the input, so no match timeout: a short one fired on a cold, busy
    // process while the engine built its automaton, and turned a request into a 500.
    private readonly Regex[] patterns;

    /// <param name="patterns">Regular expressions on <c>registry/repository</c>, e.g. <c>^ghcr\.io/acme/</c>.</param>
    public PrivateContentPolicy(IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        this.patterns = [.. patterns.Select(p => new Regex(p, RegexOptions.CultureInvariant | RegexOptions.NonBacktracking))];
    }

    public static PrivateContentPolicy None { get; } = new([]);

    public bool IsEnabled => patterns.Length > 0;

    /// <summary>True when the reference's <c>registry/repository</c> matches a pattern.</summary>
    public bool IsPrivate(Reference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return IsEnabled && Matches(reference.Name);
    }

    /// <summary>True when the blob has source labels and every source matches a pattern.</summary>
    public bool IsPrivate(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (!IsEnabled)
        {
            return false;
        }

        var sources = Sources(labels).ToList();
        return sources.Count > 0 && sources.All(Matches);
    }

    /// <summary>Every <c>registry/repository</c> containerd says the blob came from.</summary>
    public static IEnumerable<string> Sources(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        foreach (var (key, value) in labels)
        {
            if (key.StartsWith(SourceLabelPrefix, StringComparison.Ordinal))
            {
                var registry = key[SourceLabelPrefix.Length..];
                foreach (var repository in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    yield return $"{registry}/{repository}";
                }
            }
        }
    }

    private bool Matches(string name) => patterns.Any(p => p.IsMatch(name));
}
