using System.Text.Json;
using System.Text.RegularExpressions;

namespace Spegel.DaprDouble;

/// <summary>One entry of the app's <c>GET /dapr/subscribe</c> answer (a programmatic subscription).</summary>
/// <param name="PubSubName">The pub/sub component name.</param>
/// <param name="Topic">The topic.</param>
/// <param name="Route">The single route (<c>route</c>), when the app gave no <c>routes</c>.</param>
/// <param name="DefaultRoute"><c>routes.default</c>.</param>
/// <param name="Rules"><c>routes.rules</c>, in order.</param>
/// <param name="DeadLetterTopic">Where messages go when retries are exhausted.</param>
/// <param name="Metadata">Subscription metadata (e.g. <c>rawPayload</c>).</param>
public sealed record TopicSubscription(
    string PubSubName,
    string Topic,
    string? Route,
    string? DefaultRoute,
    IReadOnlyList<RouteRule> Rules,
    string? DeadLetterTopic,
    IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>The subscriber wants the bare payload instead of a CloudEvent (<c>metadata.rawPayload: "true"</c>).</summary>
    public bool RawPayload => Metadata.TryGetValue("rawPayload", out var raw) && bool.TryParse(raw, out var on) && on;

    /// <summary>The path a message goes to: the first rule that matches, else the default route; null when nothing applies.</summary>
    internal string? ResolvePath(IReadOnlyDictionary<string, string> attributes)
    {
        foreach (var rule in Rules)
        {
            if (RuleMatcher.Matches(rule.Match, attributes))
            {
                return rule.Path;
            }
        }

        return DefaultRoute ?? Route;
    }

    /// <summary>
    /// Parses the answer of <c>GET /dapr/subscribe</c>. Field names are matched without regard to case,
    /// as daprd (Go's encoding/json) does, so both <c>pubsubname</c> and Dapr.AspNetCore's <c>pubsubName</c> work.
    /// </summary>
    internal static IReadOnlyList<TopicSubscription> ParseList(ReadOnlySpan<byte> json)
    {
        if (json.IsEmpty)
        {
            return [];
        }

        using var document = JsonDocument.Parse(json.ToArray());
        if (document.RootElement.ValueKind != JsonValueKind.Array)
        {
            return [];
        }

        var result = new List<TopicSubscription>();
        foreach (var element in document.RootElement.EnumerateArray())
        {
            if (element.ValueKind != JsonValueKind.Object)
            {
                continue;
            }

            var pubsub = String(element, "pubsubname");
            var topic = String(element, "topic");
            if (string.IsNullOrEmpty(pubsub) || string.IsNullOrEmpty(topic))
            {
                continue;
            }

            string? defaultRoute = null;
            var rules = new List<RouteRule>();
            if (Property(element, "routes") is { ValueKind: JsonValueKind.Object } routes)
            {
                defaultRoute = String(routes, "default");
                if (Property(routes, "rules") is { ValueKind: JsonValueKind.Array } ruleArray)
                {
                    foreach (var rule in ruleArray.EnumerateArray())
                    {
                        if (String(rule, "path") is { Length: > 0 } path)
                        {
                            rules.Add(new RouteRule(String(rule, "match") ?? "", path));
                        }
                    }
                }
            }

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            if (Property(element, "metadata") is { ValueKind: JsonValueKind.Object } meta)
            {
                foreach (var property in meta.EnumerateObject())
                {
                    metadata[property.Name] = property.Value.ValueKind == JsonValueKind.String
                        ? property.Value.GetString() ?? ""
                        : property.Value.GetRawText();
                }
            }

            result.Add(new TopicSubscription(
                pubsub,
                topic,
                String(element, "route"),
                defaultRoute,
                rules,
                String(element, "deadLetterTopic") is { Length: > 0 } dlt ? dlt : null,
                metadata));
        }

        return result;
    }

    private static JsonElement? Property(JsonElement element, string name)
    {
        foreach (var property in element.EnumerateObject())
        {
            if (string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return property.Value;
            }
        }

        return null;
    }

    private static string? String(JsonElement element, string name) =>
        Property(element, name) is { ValueKind: JsonValueKind.String } value ? value.GetString() : null;
}

/// <summary>A routing rule: a CEL expression and the path for the messages it matches.</summary>
public sealed record RouteRule(string Match, string Path);

/// <summary>
/// A small subset of CEL, enough for routing rules on CloudEvent attributes:
/// <c>event.type == "x"</c>, <c>!=</c>, joined with <c>&amp;&amp;</c> and <c>||</c>, and the literal <c>true</c>.
/// Anything else does not match.
/// </summary>
internal static partial class RuleMatcher
{
    public static bool Matches(string expression, IReadOnlyDictionary<string, string> attributes)
    {
        if (string.IsNullOrWhiteSpace(expression))
        {
            return false;
        }

        return expression.Split("||").Any(alternative =>
            alternative.Split("&&").All(term => Term(term.Trim(), attributes)));
    }

    private static bool Term(string term, IReadOnlyDictionary<string, string> attributes)
    {
        if (term == "true")
        {
            return true;
        }

        var match = Comparison().Match(term);
        if (!match.Success)
        {
            return false;
        }

        attributes.TryGetValue(match.Groups["attr"].Value, out var actual);
        var equal = string.Equals(actual, match.Groups["value"].Value, StringComparison.Ordinal);
        return match.Groups["op"].Value == "==" ? equal : !equal;
    }

    [GeneratedRegex("""^event\.(?<attr>[A-Za-z0-9_]+)\s*(?<op>==|!=)\s*(?<q>["'])(?<value>.*)\k<q>$""")]
    private static partial Regex Comparison();
}
