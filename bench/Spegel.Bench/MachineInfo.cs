using System.Globalization;
using System.Runtime.InteropServices;
using Spegel.TestRig;

namespace Spegel.Bench;

/// <summary>What the numbers were measured on: they are only comparable within one run on one machine.</summary>
public sealed class MachineInfo
{
    public int Processors { get; init; }

    public string Cpu { get; init; } = string.Empty;

    public double MemoryGiB { get; init; }

    public string Kernel { get; init; } = string.Empty;

    public string Runtime { get; init; } = string.Empty;

    public string DotnetSdk { get; init; } = string.Empty;

    public string Containerd { get; init; } = string.Empty;

    public string Nginx { get; init; } = string.Empty;

    public string DockerRegistry { get; init; } = string.Empty;

    public string LoadClient { get; init; } = string.Empty;

    public string Snapshotter { get; init; } = string.Empty;

    public string Commit { get; init; } = string.Empty;

    public static async Task<MachineInfo> CollectAsync(string repoRoot, string loadClient)
    {
        var meminfo = ReadOr("/proc/meminfo");
        var memKb = meminfo.Split('\n').FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))?
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var cpu = ReadOr("/proc/cpuinfo").Split('\n').FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        var commit = (await TryRunAsync("git", ["-C", repoRoot, "rev-parse", "--short", "HEAD"])).Trim();
        var dirty = (await TryRunAsync("git", ["-C", repoRoot, "status", "--porcelain", "--untracked-files=no"])).Trim().Length > 0;
        string snapshotter;
        try
        {
            snapshotter = await ContainerdInstance.DescribeSnapshotterChoiceAsync();
        }
        catch (Exception ex)
        {
            snapshotter = ex.Message;
        }

        return new MachineInfo
        {
            Processors = Environment.ProcessorCount,
            Cpu = cpu,
            MemoryGiB = memKb is null ? double.NaN : Math.Round(double.Parse(memKb, CultureInfo.InvariantCulture) / 1024 / 1024, 1),
            Kernel = ReadOr("/proc/sys/kernel/osrelease").Trim(),
            Runtime = RuntimeInformation.FrameworkDescription,
            DotnetSdk = (await TryRunAsync("dotnet", ["--version"])).Trim(),
            Containerd = FirstLine(await TryRunAsync("containerd", ["--version"])),
            Nginx = FirstLine(await TryRunAsync("nginx", ["-v"])),
            DockerRegistry = FirstLine(await TryRunAsync("docker-registry", ["--version"])),
            LoadClient = loadClient,
            Snapshotter = snapshotter,
            Commit = commit.Length == 0 ? "unknown" : commit + (dirty ? " (with uncommitted changes)" : string.Empty),
        };
    }

    public IEnumerable<(string Key, string Value)> AsPairs()
    {
        yield return ("processors", Processors.ToString(CultureInfo.InvariantCulture));
        yield return ("cpu", Cpu);
        yield return ("memory", $"{MemoryGiB.ToString(CultureInfo.InvariantCulture)} GiB");
        yield return ("kernel", Kernel);
        yield return ("runtime", Runtime);
        yield return ("dotnet sdk", DotnetSdk);
        yield return ("containerd", Containerd);
        yield return ("nginx", Nginx);
        yield return ("docker-registry", DockerRegistry);
        yield return ("load client", LoadClient);
        yield return ("snapshotter", Snapshotter);
        yield return ("commit", Commit);
    }

    public string OneLine() =>
        $"{Processors} cores ({Cpu}), {MemoryGiB.ToString(CultureInfo.InvariantCulture)} GiB, Linux {Kernel}, {Runtime}, {Containerd}, {Nginx}, {DockerRegistry}, load client {LoadClient}; commit {Commit}.";

    private static string ReadOr(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return string.Empty;
        }
        catch (UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    private static string FirstLine(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "unknown";

    private static async Task<string> TryRunAsync(string tool, string[] args)
    {
        try
        {
            var path = RequiredTools.Find(tool, tool);
            var result = await ProcessRunner.RunAsync(path, args, TimeSpan.FromSeconds(20));
            return result.StdOut + result.StdErr;
        }
        catch (Exception ex) when (ex is MissingToolException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            return "not installed";
        }
    }
}
