using Spegel.TestRig;
using System.Diagnostics;
using System.Text.Json;

namespace Spegel.Cluster;

/// <summary>Where one manifest or blob of a pull came from, as the node's registry logged it.</summary>
public sealed record BlobSource(string Key, string Handler, string Source, long Bytes)
{
    public const string Upstream = "upstream";
    public const string Local = "local";

    public bool FromPeer => Source is not (Upstream or Local);
}

/// <summary>One pull through a node's mirror configuration and what the node's registry logged during it.</summary>
public sealed record PullReport(string Node, string Image, bool Succeeded, TimeSpan Elapsed, IReadOnlyList<BlobSource> Blobs, string CtrOutput)
{
    public long Bytes => Blobs.Sum(b => b.Bytes);

    public IReadOnlyList<BlobSource> Layers => [.. Blobs.Where(b => b.Handler == "blob")];

    /// <summary><c>upstream</c>, <c>peer node-1</c>, <c>peers node-1, node-2</c>, <c>local</c>, or <c>mixed (…)</c>.</summary>
    public string Summary
    {
        get
        {
            if (Blobs.Count == 0)
            {
                return "nothing fetched";
            }

            if (Blobs.All(b => b.FromPeer))
            {
                var peers = Blobs.Select(b => b.Source).Distinct().Order(StringComparer.Ordinal).ToList();
                return (peers.Count == 1 ? "peer " : "peers ") + string.Join(", ", peers);
            }

            var kinds = Blobs.Select(b => b.FromPeer ? "peer " + b.Source : b.Source).Distinct().Order(StringComparer.Ordinal).ToList();
            return kinds.Count == 1 ? kinds[0] : $"mixed ({string.Join(", ", kinds)})";
        }
    }
}

/// <summary>
/// Pulls with <c>ctr images pull --hosts-dir</c> (as kubelet's containerd would) and measures where every blob came
/// from: the node registry's request log lines written during the pull (<c>"msg":"request"</c>, <c>"handler"</c>,
/// <c>"source"</c>: <c>local</c>, a peer's name, or <c>miss</c>; <c>"bytes"</c>). A GET the registry answered
/// 2xx came from that source; a GET it missed (404) that the pull still got came from the upstream (containerd's
/// next host), its size read from the node's content store. HEAD requests (tag resolution) are not counted.
/// </summary>
internal static class Puller
{
    public static async Task<PullReport> PullAsync(NodeInfo node, string image, CancellationToken ct)
    {
        var offset = File.Exists(node.RegistryLog) ? new FileInfo(node.RegistryLog).Length : 0;
        var clock = Stopwatch.StartNew();
        var result = await ContainerdInstance.CtrAsync(
            node.ContainerdSocket,
            node.ContainerdNamespace,
            ["images", "pull", "--snapshotter", node.Snapshotter, "--plain-http", "--hosts-dir", node.HostsDirectory, image],
            TimeSpan.FromSeconds(150),
            ct);
        clock.Stop();

        // The registry logs a request once its response is done; let the last lines land in the file.
        var lines = await ReadSettledAsync(node.RegistryLog, offset, ct);
        var blobs = Classify(lines, node.ContentPath, result.Succeeded);
        return new PullReport(node.Name, image, result.Succeeded, clock.Elapsed, blobs, Errors(result.StdOut + "\n" + result.StdErr));
    }

    /// <summary>Request log lines (parsed) of <paramref name="lines"/>; other lines are skipped.</summary>
    public static IEnumerable<RequestLine> Requests(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            if (!line.StartsWith('{') || !line.Contains("\"msg\":\"request\"", StringComparison.Ordinal))
            {
                continue;
            }

            RequestLine? parsed = null;
            try
            {
                using var json = JsonDocument.Parse(line);
                var root = json.RootElement;
                parsed = new RequestLine(
                    root.TryGetProperty("status", out var s) && s.TryGetInt32(out var status) ? status : 0,
                    Text(root, "method"),
                    Text(root, "handler"),
                    Text(root, "source"),
                    root.TryGetProperty("bytes", out var b) && b.TryGetInt64(out var bytes) ? bytes : 0,
                    Text(root, "path"));
            }
            catch (JsonException)
            {
            }

            if (parsed is not null)
            {
                yield return parsed;
            }
        }
    }

    internal static List<BlobSource> Classify(IEnumerable<string> lines, string contentPath, bool pullSucceeded)
    {
        var byKey = new Dictionary<string, BlobSource>(StringComparer.Ordinal);
        foreach (var request in Requests(lines))
        {
            if (request.Method != "GET" || request.Handler is not ("blob" or "manifest"))
            {
                continue;
            }

            var key = request.Path[(request.Path.LastIndexOf('/') + 1)..];
            var hit = request.Status is >= 200 and < 300 && request.Source is not ("miss" or "unavailable" or "filtered");
            BlobSource source;
            if (hit)
            {
                source = new BlobSource(key, request.Handler, request.Source, request.Bytes);
            }
            else if (pullSucceeded)
            {
                source = new BlobSource(key, request.Handler, BlobSource.Upstream, ContentSize(contentPath, key));
            }
            else
            {
                source = new BlobSource(key, request.Handler, "failed", 0);
            }

            // A later successful answer for the same key wins (containerd may retry).
            if (!byKey.TryGetValue(key, out var previous) || hit || previous.Source == "failed")
            {
                byKey[key] = source;
            }
        }

        return [.. byKey.Values];
    }

    /// <summary>ctr's messages without its progress redraws: the last lines that say something.</summary>
    private static string Errors(string output) =>
        string.Join('\n', output.Replace('\r', '\n').Split('\n')
            .Where(l => l.Contains("level=", StringComparison.Ordinal) || l.StartsWith("ctr:", StringComparison.Ordinal))
            .TakeLast(12));

    private static long ContentSize(string contentPath, string key)
    {
        var colon = key.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return 0;
        }

        var file = new FileInfo(Path.Combine(contentPath, "blobs", key[..colon], key[(colon + 1)..]));
        return file.Exists ? file.Length : 0;
    }

    private static async Task<List<string>> ReadSettledAsync(string path, long offset, CancellationToken ct)
    {
        var lastLength = -1L;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(3))
        {
            await Task.Delay(150, ct);
            var length = File.Exists(path) ? new FileInfo(path).Length : 0;
            if (length == lastLength)
            {
                break;
            }

            lastLength = length;
        }

        return ReadFrom(path, offset);
    }

    internal static List<string> ReadFrom(string path, long offset)
    {
        var lines = new List<string>();
        if (!File.Exists(path))
        {
            return lines;
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        stream.Seek(Math.Min(offset, stream.Length), SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            lines.Add(line);
        }

        return lines;
    }

    private static string Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) ? value.ValueKind == JsonValueKind.String ? value.GetString() ?? string.Empty : value.ToString() : string.Empty;
}

/// <summary>The fields of one registry request log line that the tool reads.</summary>
public sealed record RequestLine(int Status, string Method, string Handler, string Source, long Bytes, string Path);
