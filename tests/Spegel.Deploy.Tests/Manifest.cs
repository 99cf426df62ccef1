using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Spegel.Deploy.Tests;

/// <summary>The objects of one render, as JSON trees (every scalar a string, as kubectl writes it).</summary>
internal sealed class Manifest
{
    private Manifest(IReadOnlyList<JsonObject> objects) => Objects = objects;

    public IReadOnlyList<JsonObject> Objects { get; }

    public static Manifest Parse(string yaml)
    {
        var stream = new YamlStream();
        using (var reader = new StringReader(yaml))
        {
            stream.Load(reader);
        }

        var objects = stream.Documents
            .Select(d => ToJson(d.RootNode))
            .OfType<JsonObject>()
            .ToList();
        return new Manifest(objects);
    }

    public IEnumerable<JsonObject> OfKind(string kind) =>
        Objects.Where(o => string.Equals(o.Str("kind"), kind, StringComparison.Ordinal));

    public JsonObject Single(string kind, string name) =>
        Assert.Single(OfKind(kind), o => string.Equals(o.Str("metadata", "name"), name, StringComparison.Ordinal));

    public IReadOnlyList<Workload> DaemonSets => OfKind("DaemonSet").Select(d => new Workload(d)).ToList();

    public Workload DaemonSet(string component) =>
        Assert.Single(DaemonSets, d => string.Equals(d.Component, component, StringComparison.Ordinal));

    public IReadOnlyList<JsonObject> DaprComponents => OfKind("Component").Where(o => o.Str("apiVersion")!.StartsWith("dapr.io/", StringComparison.Ordinal)).ToList();

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? string.Empty, ToJson(kv.Value)))),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(ToJson).ToArray()),
        YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "null" or "~" } => null,
        YamlScalarNode scalar => JsonValue.Create(scalar.Value),
        _ => throw new InvalidOperationException($"Unexpected YAML node {node.NodeType}."),
    };
}

/// <summary>One DaemonSet and the parts of its pod template the tests look at.</summary>
internal sealed class Workload(JsonObject daemonSet)
{
    public JsonObject Object { get; } = daemonSet;

    public string Name => Object.Str("metadata", "name")!;

    public string? Component => PodLabels.Str("app.kubernetes.io/component");

    public JsonObject Template => Object.Obj("spec", "template");

    public JsonObject PodSpec => Template.Obj("spec");

    public JsonObject PodLabels => Template.Obj("metadata", "labels");

    public JsonObject Annotations => Template["metadata"]?["annotations"] as JsonObject ?? [];

    public string? AppId => Annotations.Str("dapr.io/app-id");

    public IReadOnlyList<JsonObject> Containers => PodSpec.Arr("containers").Cast<JsonObject>().ToList();

    public IReadOnlyList<JsonObject> InitContainers => (PodSpec["initContainers"] as JsonArray)?.Cast<JsonObject>().ToList() ?? [];

    public IEnumerable<JsonObject> AllContainers => InitContainers.Concat(Containers);

    /// <summary>The service itself: the first container, named after the component.</summary>
    public JsonObject App => Assert.Single(Containers, c => string.Equals(c.Str("name"), Component, StringComparison.Ordinal));

    public IReadOnlyList<JsonObject> Volumes => (PodSpec["volumes"] as JsonArray)?.Cast<JsonObject>().ToList() ?? [];

    public JsonObject Volume(string name) => Assert.Single(Volumes, v => string.Equals(v.Str("name"), name, StringComparison.Ordinal));

    /// <summary>The container port named <paramref name="name"/>.</summary>
    public static JsonObject Port(JsonObject container, string name) =>
        Assert.Single(container.Arr("ports").Cast<JsonObject>(), p => string.Equals(p.Str("name"), name, StringComparison.Ordinal));

    /// <summary>A probe's port as a number, resolving a port name against the container's ports.</summary>
    public static int ProbePort(JsonObject container, JsonObject probe)
    {
        var port = probe.Str("httpGet", "port")!;
        return int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number)
            ? number
            : int.Parse(Port(container, port).Str("containerPort")!, CultureInfo.InvariantCulture);
    }

    /// <summary>(container, mount) for every mount of a hostPath volume.</summary>
    public IEnumerable<(JsonObject Container, JsonObject Mount, string HostPath)> HostPathMounts()
    {
        var hostPaths = Volumes
            .Where(v => v["hostPath"] is not null)
            .ToDictionary(v => v.Str("name")!, v => v.Str("hostPath", "path")!, StringComparer.Ordinal);
        foreach (var container in AllContainers)
        {
            foreach (var mount in (container["volumeMounts"] as JsonArray)?.Cast<JsonObject>() ?? [])
            {
                if (hostPaths.TryGetValue(mount.Str("name")!, out var path))
                {
                    yield return (container, mount, path);
                }
            }
        }
    }
}

/// <summary>How the kubelet resolves a container's environment: downward API fields and $(VAR) references.</summary>
internal static partial class PodEnvironment
{
    /// <summary>What the downward API gives on a sample node.</summary>
    public static readonly IReadOnlyDictionary<string, string> SampleNode = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["spec.nodeName"] = "node-a",
        ["status.hostIP"] = "10.0.0.1",
        ["status.podIP"] = "10.244.1.7",
        ["metadata.name"] = "spegel-pod",
        ["metadata.namespace"] = "spegel",
    };

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    public static partial Regex Reference();

    /// <summary>The environment in order, references expanded only to variables defined earlier (as the kubelet does).</summary>
    public static IReadOnlyDictionary<string, string> Resolve(JsonObject container, IReadOnlyDictionary<string, string>? fields = null)
    {
        fields ??= SampleNode;
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in (container["env"] as JsonArray)?.Cast<JsonObject>() ?? [])
        {
            var name = variable.Str("name")!;
            if (variable.Str("valueFrom", "fieldRef", "fieldPath") is { } field)
            {
                env[name] = fields[field];
            }
            else if (variable["valueFrom"]?["secretKeyRef"] is JsonObject secret)
            {
                env[name] = $"<secret {secret.Str("name")}/{secret.Str("key")}>";
            }
            else
            {
                env[name] = Expand(variable.Str("value") ?? string.Empty, env);
            }
        }

        return env;
    }

    public static string Expand(string value, IReadOnlyDictionary<string, string> env) =>
        Reference().Replace(value, m => env.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);

    /// <summary>command + args, expanded against the container's environment.</summary>
    public static IReadOnlyList<string> CommandLine(JsonObject container, IReadOnlyDictionary<string, string>? fields = null)
    {
        var env = Resolve(container, fields);
        return Strings(container["command"]).Concat(Strings(container["args"])).Select(a => Expand(a, env)).ToList();
    }

    public static IEnumerable<string> Strings(JsonNode? node) =>
        (node as JsonArray)?.Select(n => n!.GetValue<string>()) ?? [];
}

/// <summary>Path access into JSON trees; a missing step is null.</summary>
internal static class JsonPath
{
    public static JsonNode? At(this JsonNode node, params string[] path)
    {
        JsonNode? current = node;
        foreach (var step in path)
        {
            current = current is JsonObject o && o.TryGetPropertyValue(step, out var next) ? next : null;
        }

        return current;
    }

    public static string? Str(this JsonNode node, params string[] path) => node.At(path) is JsonValue v ? v.GetValue<string>() : null;

    public static JsonObject Obj(this JsonNode node, params string[] path) =>
        node.At(path) as JsonObject ?? throw new Xunit.Sdk.XunitException($"No object at {string.Join('.', path)}.");

    public static JsonArray Arr(this JsonNode node, params string[] path) =>
        node.At(path) as JsonArray ?? throw new Xunit.Sdk.XunitException($"No array at {string.Join('.', path)}.");
}
