using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;

namespace Spegel.Deploy.Tests;

/// <summary>
/// Renders kustomizations with <c>kubectl kustomize</c>, exactly what <c>kubectl apply -k</c> would send. Each
/// directory is rendered once per test run (the text is immutable; every caller parses its own copy).
/// </summary>
internal static class Kustomize
{
    /// <summary>The Debian package that provides kubectl (with kustomize built in); ./test.sh installs it.</summary>
    public const string AptPackage = "kubectl";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly ConcurrentDictionary<string, Lazy<string>> Rendered = new(StringComparer.Ordinal);

    public static string RepoRoot { get; } = FindRepoRoot();

    public const string Base = "deploy/kubernetes/base";
    public const string Cleanup = "deploy/kubernetes/cleanup";

    public static string Overlay(string backend) => $"deploy/kubernetes/overlays/{backend}";

    /// <summary>A test composition under testdata/kustomize: an overlay plus an optional component, as an operator would write it.</summary>
    public static string Composition(string name) => $"tests/Spegel.Deploy.Tests/testdata/kustomize/{name}";

    /// <summary>The rendered YAML of a kustomization directory given relative to the repository root.</summary>
    public static string RenderText(string directory)
    {
        var full = Path.GetFullPath(Path.Combine(RepoRoot, directory));
        return Rendered.GetOrAdd(full, d => new Lazy<string>(() => Run("kubectl", d))).Value;
    }

    public static Manifest Render(string directory) => Manifest.Parse(RenderText(directory));

    /// <summary>Runs <paramref name="kubectl"/> kustomize on a directory; a missing kubectl fails with the package to install.</summary>
    internal static string Run(string kubectl, string directory)
    {
        var start = new ProcessStartInfo(kubectl)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("kustomize");
        start.ArgumentList.Add(directory);

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{kubectl} did not start.");
        }
        catch (Win32Exception ex)
        {
            throw new InvalidOperationException(
                $"'{kubectl}' is not installed or not on PATH ({ex.Message}). The deploy tests render the manifests with " +
                $"`kubectl kustomize`; install the Debian package `{AptPackage}` (apt-get install -y {AptPackage}), " +
                "which ./test.sh does.", ex);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Timeout))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"kubectl kustomize {directory} took longer than {Timeout}.");
            }

            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"kubectl kustomize {directory} failed ({process.ExitCode}): {stderr.Result}");
            }

            return stdout.Result;
        }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Spegel.Dapr.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Spegel.Dapr.sln above {AppContext.BaseDirectory}.");
    }
}
