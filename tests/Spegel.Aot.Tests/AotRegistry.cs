using System.Diagnostics;
using Spegel.TestRig;

namespace Spegel.Aot.Tests;

/// <summary>
/// The registry as it ships: <c>dotnet publish services/registry -r linux-x64</c> (PublishAot is set in its project),
/// published once per test run into <c>artifacts/aot/registry</c>. Publishing runs the trim and AOT analyzers over
/// everything the registry pulls in, as errors, so a dependency that needs runtime code generation fails here.
/// </summary>
internal static class AotRegistry
{
    private static readonly Lazy<Task<string>> Published = new(PublishAsync);

    /// <summary>The native executable, published on first use.</summary>
    public static Task<string> ExecutableAsync() => Published.Value;

    private static async Task<string> PublishAsync()
    {
        var root = SpegelServiceProcess.RepositoryRoot();
        var output = Path.Combine(root, "artifacts", "aot", "registry");
        var clock = Stopwatch.StartNew();
        var result = await ProcessRunner.RunAsync(
            "dotnet",
            ["publish", Path.Combine(root, "services", "registry", "Spegel.Registry.csproj"), "-c", "Release", "-r", "linux-x64", "-o", output, "-nologo", "-v", "quiet"],
            TimeSpan.FromMinutes(20));
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"the registry's AOT publish failed after {clock.Elapsed.TotalSeconds:0} s:\n{result.StdOut}\n{result.StdErr}");
        }

        var executable = Path.Combine(output, "Spegel.Registry");
        return File.Exists(executable) ? executable : throw new FileNotFoundException("the AOT publish produced no executable", executable);
    }
}
