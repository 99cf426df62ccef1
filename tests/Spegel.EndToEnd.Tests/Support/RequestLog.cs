using System.Globalization;
using System.Text.Json;

namespace Spegel.EndToEnd.Tests.Support;

/// <summary>One registry <c>"msg":"request"</c> log line.</summary>
internal sealed record RequestLine(int Status, string Method, string Handler, string Source, double LatencyMs, string Path)
{
    /// <summary>The registry request lines among a service's output lines.</summary>
    public static IReadOnlyList<RequestLine> Parse(IEnumerable<string> lines)
    {
        var result = new List<RequestLine>();
        foreach (var line in lines)
        {
            if (!line.Contains("\"msg\":\"request\"", StringComparison.Ordinal))
            {
                continue;
            }

            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            result.Add(new RequestLine(
                root.GetProperty("status").GetInt32(),
                root.GetProperty("method").GetString()!,
                root.GetProperty("handler").GetString()!,
                root.GetProperty("source").GetString()!,
                double.Parse(root.GetProperty("latency").GetString()!.TrimEnd('m', 's'), CultureInfo.InvariantCulture),
                root.GetProperty("path").GetString()!));
        }

        return result;
    }
}
