using System.Globalization;
using System.Reflection;
using System.Runtime.Loader;
using System.Text.RegularExpressions;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.Services.Tests;

/// <summary>
/// docs/configuration.md lists every key the services read, with the default the code really has: every bound
/// property of every options class in the three built services (and the libraries they ship with), every key read
/// straight from configuration or the environment, and every variable <c>./spegel</c> reads.
/// </summary>
public sealed partial class ConfigurationDocTests(ITestOutputHelper output)
{
    private const string OptionsInterface = "Spegel.Hosting.IValidatableOptions";

    /// <summary>
    /// Keys read straight from <c>IConfiguration</c> or the environment (not through an options class): the literal
    /// in the source, and the key as docs/configuration.md names it. A new literal read fails
    /// <see cref="DirectReads_InTheSource_AreAllListedHere"/> until it is added here and documented.
    /// </summary>
    private static readonly Dictionary<string, string> DirectKeys = new(StringComparer.Ordinal)
    {
        ["urls"] = "Urls",
        ["http_ports"] = "ASPNETCORE_HTTP_PORTS",
        ["https_ports"] = "ASPNETCORE_HTTPS_PORTS",
        ["Kestrel:Endpoints"] = "Kestrel:Endpoints",
        ["Override"] = "Serilog:MinimumLevel:Override:<category>",
        ["Default"] = "Serilog:MinimumLevel:Default",
        ["DAPR_GRPC_ENDPOINT"] = "DAPR_GRPC_ENDPOINT",
        ["DAPR_GRPC_PORT"] = "DAPR_GRPC_PORT",
        ["DAPR_HTTP_ENDPOINT"] = "DAPR_HTTP_ENDPOINT",
        ["DAPR_HTTP_PORT"] = "DAPR_HTTP_PORT",
        ["DAPR_API_TOKEN"] = "DAPR_API_TOKEN",
        ["APP_API_TOKEN"] = "APP_API_TOKEN",
    };

    /// <summary>Properties of options classes that configuration does not bind (set by code).</summary>
    private static readonly HashSet<string> NotBound = new(StringComparer.Ordinal) { "Serilog:MinimumLevel:Configuration" };

    /// <summary>Defaults that depend on the machine or on another key: what the documented default must say instead.</summary>
    private static readonly Dictionary<string, string> DescribedDefaults = new(StringComparer.Ordinal)
    {
        ["Spegel:Node:Name"] = "host name",
        ["Spegel:MirrorSpoolPath"] = "spegel-mirror-spool",
        ["Spegel:Resolver:LivenessRefresh"] = "`00:00:01`",
    };

    private static readonly string[] SourceFolders = ["services", "lib"];

    private static string Root => SpegelServiceProcess.RepositoryRoot();

    [Fact]
    public void EveryOptionsProperty_IsARowWithItsRealDefault()
    {
        var rows = DocumentedRows();
        var keys = OptionKeys();
        output.WriteLine($"{keys.Count} option keys from {keys.Select(k => k.Type).Distinct().Count()} options classes; {rows.Count} documented keys");

        var missing = keys.Where(k => !rows.ContainsKey(k.Key)).Select(k => $"{k.Key} ({k.Type})").ToList();
        Assert.True(missing.Count == 0, $"docs/configuration.md has no row for: {string.Join(", ", missing)}");

        var wrong = new List<string>();
        foreach (var (key, _, value) in keys)
        {
            var documented = rows[key];
            var expected = DescribedDefaults.TryGetValue(key, out var described) ? described : Expected(value);
            if (!documented.Contains(expected, StringComparison.Ordinal))
            {
                wrong.Add($"{key}: the code's default is {expected}, the doc says '{documented}'");
            }
        }

        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
    }

    [Fact]
    public void DirectReads_InTheSource_AreAllListedHere()
    {
        var found = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in SourceFolders.SelectMany(d => Directory.EnumerateFiles(Path.Combine(Root, d), "*.cs", SearchOption.AllDirectories)))
        {
            if (file.Contains("/obj/", StringComparison.Ordinal) || file.Contains("/bin/", StringComparison.Ordinal))
            {
                continue;
            }

            var text = File.ReadAllText(file);
            foreach (Match match in DirectReadPattern().Matches(text))
            {
                found.Add(match.Groups["key"].Value);
            }
        }

        output.WriteLine($"read directly: {string.Join(", ", found)}");
        Assert.Contains("DAPR_GRPC_ENDPOINT", found);
        var unlisted = found.Where(k => !DirectKeys.ContainsKey(k)).ToList();
        Assert.True(unlisted.Count == 0, $"read straight from configuration but not in this test's list (add it, and a row in docs/configuration.md): {string.Join(", ", unlisted)}");
    }

    [Fact]
    public void DirectKeysAndSpegelScriptVariables_AreDocumented()
    {
        var rows = DocumentedRows();
        var script = File.ReadAllText(Path.Combine(Root, "spegel"));
        var variables = ScriptVariablePattern().Matches(script).Select(m => m.Groups["name"].Value).ToHashSet(StringComparer.Ordinal);
        output.WriteLine($"./spegel reads: {string.Join(", ", variables)}");
        Assert.Contains("SPEGEL_CONFIGURATION", variables);
        Assert.Contains("SPEGEL_REBUILD", variables);

        var missing = DirectKeys.Values.Concat(variables).Where(k => !rows.ContainsKey(k)).ToList();
        Assert.True(missing.Count == 0, $"docs/configuration.md has no row for: {string.Join(", ", missing)}");
    }

    /// <summary>How the doc writes a default: TimeSpans as <c>00:00:10</c>, numbers plain, <c>true</c>/<c>false</c>, none for nothing.</summary>
    private static string Expected(object? value) => value switch
    {
        null => "none",
        string { Length: 0 } => "none",
        Array { Length: 0 } => "none",
        System.Collections.ICollection { Count: 0 } => "none",
        TimeSpan span => $"`{span.ToString("c", CultureInfo.InvariantCulture)}`",
        bool flag => flag ? "`true`" : "`false`",
        IFormattable number => $"`{number.ToString(null, CultureInfo.InvariantCulture)}`",
        _ => $"`{value}`",
    };

    /// <summary>key → default cell, from every table row whose first cell names keys in backticks.</summary>
    private static Dictionary<string, string> DocumentedRows()
    {
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(Path.Combine(Root, "docs", "configuration.md")))
        {
            if (!line.StartsWith("| `", StringComparison.Ordinal))
            {
                continue;
            }

            var cells = line.Split(" | ");
            foreach (Match key in Regex.Matches(cells[0], "`([^`]+)`"))
            {
                rows[key.Groups[1].Value] = cells.Length > 1 ? cells[1] : string.Empty;
            }
        }

        return rows;
    }

    /// <summary>Section:Property with the default of a new instance, for every options class the built services hold.</summary>
    private static List<(string Key, string Type, object? Default)> OptionKeys()
    {
        var keys = new List<(string, string, object?)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var service in new[] { "registry", "indexer", "resolver" })
        {
            var dll = SpegelServiceProcess.DllPath(service);
            var context = new ServiceLoadContext(dll);
            var assemblies = Directory.EnumerateFiles(Path.GetDirectoryName(dll)!, "Spegel.*.dll")
                .Select(path => context.LoadFromAssemblyPath(path));
            foreach (var type in assemblies.SelectMany(LoadableTypes).Where(t => t is { IsClass: true, IsAbstract: false }))
            {
                var section = type.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)?.GetRawConstantValue() as string;
                var validatable = type.GetInterfaces().Any(i => i.FullName == OptionsInterface);
                if (section is null && !validatable)
                {
                    continue;
                }

                Assert.True(section is not null, $"{type.FullName} implements IValidatableOptions but has no SectionName: the test cannot tell its keys");
                if (!seen.Add(type.FullName!))
                {
                    continue;
                }

                var instance = Activator.CreateInstance(type);
                foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
                {
                    var key = $"{section}:{property.Name}";
                    var bound = property.SetMethod is { IsPublic: true } || IsCollection(property.PropertyType);
                    if (!bound || NotBound.Contains(key))
                    {
                        continue;
                    }

                    Assert.True(IsBindable(property.PropertyType), $"{type.FullName}.{property.Name} ({property.PropertyType}) is public and settable but not a configuration value: list it in NotBound if configuration does not set it");
                    keys.Add((key, type.Name, property.GetValue(instance)));
                }
            }
        }

        return keys;
    }

    private static IEnumerable<Type> LoadableTypes(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException ex)
        {
            return ex.Types.OfType<Type>();
        }
    }

    private static bool IsCollection(Type type) =>
        type != typeof(string) && type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(ICollection<>));

    private static bool IsBindable(Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying.IsPrimitive || underlying.IsEnum || underlying == typeof(string) || underlying == typeof(TimeSpan) || underlying == typeof(decimal))
        {
            return true;
        }

        var element = underlying.IsArray ? underlying.GetElementType() : underlying.IsGenericType ? underlying.GetGenericArguments()[0] : null;
        return element is not null && IsCollection(underlying) && IsBindable(element);
    }

    // configuration["KEY"], GetSection("KEY"), Environment.GetEnvironmentVariable("KEY"), EnvironmentVariable = "KEY".
    [GeneratedRegex("""(?:[Cc]onfiguration\[|GetSection\(|GetEnvironmentVariable\(|EnvironmentVariable = )\s*"(?<key>[^"]+)"(?:\s*[\]\)]|;)""")]
    private static partial Regex DirectReadPattern();

    [GeneratedRegex(@"\$\{?(?<name>SPEGEL_[A-Z0-9_]+)")]
    private static partial Regex ScriptVariablePattern();

    /// <summary>A service's own dependency set (its deps.json), so its options classes load as they do in the service.</summary>
    private sealed class ServiceLoadContext(string mainAssembly) : AssemblyLoadContext(isCollectible: true)
    {
        private readonly AssemblyDependencyResolver _resolver = new(mainAssembly);

        protected override Assembly? Load(AssemblyName assemblyName) =>
            _resolver.ResolveAssemblyToPath(assemblyName) is { } path ? LoadFromAssemblyPath(path) : null;
    }
}
