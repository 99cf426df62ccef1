using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Spegel.Deploy.Tests;

/// <summary>
/// The Dockerfiles cannot be built here (no Docker engine), so what can go wrong without building is checked
/// statically: the stages, that every project a publish needs is copied in, and that the image starts what the
/// DaemonSet expects where it expects it.
/// </summary>
public partial class DockerfileTests
{
    public static TheoryData<string, string> Services => new()
    {
        { "registry", "services/registry/Spegel.Registry.csproj" },
        { "indexer", "services/indexer/Spegel.Indexer.csproj" },
        { "resolver", "services/resolver/Spegel.Resolver.csproj" },
    };

    [Theory]
    [MemberData(nameof(Services))]
    public void Dockerfile_Service_BuildsWithTheSdkAndRunsOnTheAspNetRuntime(string service, string project)
    {
        var file = Dockerfile.Load(service);
        var stages = file.Instructions("FROM").ToList();

        Assert.True(stages.Count >= 2, "multi-stage");
        Assert.Contains("mcr.microsoft.com/dotnet/sdk:10.0 AS build", stages[0], StringComparison.Ordinal);
        Assert.StartsWith("mcr.microsoft.com/dotnet/aspnet:10.0", stages[^1], StringComparison.Ordinal);
        Assert.Contains(file.Publishes, p => p.Project == project);
    }

    [Theory]
    [MemberData(nameof(Services))]
    public void Dockerfile_Service_CopiesEveryProjectItPublishes(string service, string project)
    {
        var file = Dockerfile.Load(service);
        var copied = file.Instructions("COPY").Where(c => !c.StartsWith("--from", StringComparison.Ordinal))
            .SelectMany(c => c.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipLast(1))
            .ToList();

        foreach (var shared in new[] { "global.json", "Directory.Build.props", "Directory.Packages.props" })
        {
            Assert.Contains(shared, copied);
        }

        foreach (var published in file.Publishes.Select(p => p.Project).Append(project).Distinct())
        {
            foreach (var needed in ProjectClosure(published))
            {
                var directory = Path.GetDirectoryName(needed)!.Replace('\\', '/') + "/";
                Assert.True(copied.Any(c => directory.StartsWith(c.TrimEnd('/') + "/", StringComparison.Ordinal)),
                    $"{service}.Dockerfile publishes {published}, which needs {needed}, but copies only {string.Join(", ", copied)}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Services))]
    public void Dockerfile_Service_StartsWhatTheDaemonSetRuns(string service, string project)
    {
        var file = Dockerfile.Load(service);
        var daemonSet = Kustomize.Render(Kustomize.Base).DaemonSet(service);
        var app = daemonSet.App;
        var publish = Assert.Single(file.Publishes, p => p.Project == project);
        var destination = file.CopiedFrom(publish.Output);

        // The registry ships as its Native AOT executable; the others run on the shared runtime.
        string[] entrypoint = service == "registry"
            ? [$"{destination.TrimEnd('/')}/{AssemblyName(project)}"]
            : ["dotnet", $"{destination.TrimEnd('/')}/{AssemblyName(project)}.dll"];
        Assert.Equal(entrypoint, JsonSerializer.Deserialize<string[]>(file.Instructions("ENTRYPOINT").Single()) ?? []);
        Assert.Equal(Workload.Port(app, "http").Str("containerPort"), file.Instructions("EXPOSE").Single());
        Assert.Equal(PodEnvironment.Resolve(app)["Urls"], file.Instructions("ENV").Single().Split('=', 2)[1]);
        // The image's own user is the one the DaemonSet runs the service as.
        Assert.Equal(app.Str("securityContext", "runAsUser"), file.Instructions("USER").Single());
        Assert.Equal($"spegel-dapr/{service}:dev", app.Str("image"));
        Assert.Null(app["command"]);
    }

    [Fact]
    public void Dockerfile_Registry_PublishesNativeAotOnTheTargetPlatformWithItsToolchain()
    {
        var file = Dockerfile.Load("registry");
        var project = XDocument.Load(Path.Combine(Kustomize.RepoRoot, "services/registry/Spegel.Registry.csproj"));
        var publish = Assert.Single(file.Instructions("RUN"), r => r.Contains("dotnet publish services/registry/", StringComparison.Ordinal));
        var registryPublish = publish.Split("&&").Single(c => c.Contains("services/registry/", StringComparison.Ordinal));

        Assert.Equal("true", project.Descendants("PublishAot").Single().Value);
        // AOT does not cross-compile here: no --platform=$BUILDPLATFORM stage and no -a for another architecture.
        Assert.DoesNotContain("$BUILDPLATFORM", file.Instructions("FROM").First(), StringComparison.Ordinal);
        Assert.Contains("--use-current-runtime", registryPublish, StringComparison.Ordinal);
        Assert.DoesNotContain("UseAppHost=false", registryPublish, StringComparison.Ordinal);
        Assert.Contains(file.Instructions("RUN"), r => r.Contains("clang", StringComparison.Ordinal) && r.Contains("zlib1g-dev", StringComparison.Ordinal));
    }

    [Fact]
    public void Dockerfile_Registry_ShipsTheCliWhereTheInitContainerRunsIt()
    {
        const string cli = "tools/Spegel.Cli/Spegel.Cli.csproj";
        var file = Dockerfile.Load("registry");
        var init = Assert.Single(Kustomize.Render(Kustomize.Base).DaemonSet("registry").InitContainers);
        var publish = Assert.Single(file.Publishes, p => p.Project == cli);

        var dll = $"{file.CopiedFrom(publish.Output).TrimEnd('/')}/{AssemblyName(cli)}.dll";

        Assert.Equal(["dotnet", dll, "configure-containerd"], PodEnvironment.Strings(init["command"]));
    }

    /// <summary>The project and every project it references, transitively, relative to the repository root.</summary>
    private static HashSet<string> ProjectClosure(string project)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([project]);
        while (pending.TryPop(out var current))
        {
            if (!seen.Add(current))
            {
                continue;
            }

            var full = Path.Combine(Kustomize.RepoRoot, current);
            foreach (var reference in XDocument.Load(full).Descendants("ProjectReference").Select(r => r.Attribute("Include")!.Value))
            {
                var resolved = Path.GetRelativePath(Kustomize.RepoRoot, Path.GetFullPath(Path.Combine(Path.GetDirectoryName(full)!, reference.Replace('\\', '/'))));
                pending.Push(resolved.Replace('\\', '/'));
            }
        }

        return seen;
    }

    private static string AssemblyName(string project) =>
        XDocument.Load(Path.Combine(Kustomize.RepoRoot, project)).Descendants("AssemblyName").Select(a => a.Value).SingleOrDefault()
        ?? Path.GetFileNameWithoutExtension(project);

    [GeneratedRegex(@"dotnet publish (?<project>\S+\.csproj)\b.*?-o (?<output>\S+)")]
    private static partial Regex Publish();

    private sealed record PublishStep(string Project, string Output);

    private sealed class Dockerfile(string service, IReadOnlyList<string> lines)
    {
        public static Dockerfile Load(string service)
        {
            var text = File.ReadAllText(Path.Combine(Kustomize.RepoRoot, "deploy", "docker", $"{service}.Dockerfile"));
            // Join continuation lines; drop comments and blank lines.
            var joined = text.Replace("\\\n", " ", StringComparison.Ordinal).Split('\n')
                .Select(l => l.Trim())
                .Where(l => l.Length > 0 && !l.StartsWith('#'))
                .ToList();
            return new Dockerfile(service, joined);
        }

        public IEnumerable<string> Instructions(string keyword) =>
            lines.Where(l => l.StartsWith(keyword + " ", StringComparison.Ordinal)).Select(l => l[(keyword.Length + 1)..].Trim());

        public IReadOnlyList<PublishStep> Publishes =>
            Instructions("RUN").SelectMany(r => r.Split("&&"))
                .Select(c => Publish().Match(c))
                .Where(m => m.Success)
                .Select(m => new PublishStep(m.Groups["project"].Value, m.Groups["output"].Value))
                .ToList();

        /// <summary>Where the final stage copies a build output directory to.</summary>
        public string CopiedFrom(string output)
        {
            var copy = Assert.Single(Instructions("COPY"), c => c.StartsWith("--from=build " + output.TrimEnd('/') + "/", StringComparison.Ordinal));
            var destination = copy.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1];
            Assert.True(destination.StartsWith('/'), $"{service}.Dockerfile copies {output} to a relative path");
            return destination;
        }
    }
}
