using System.Diagnostics;
using System.Runtime.Loader;
using Spegel.TestRig;
using Xunit.Abstractions;

namespace Spegel.Containerd.Tests;

/// <summary>
/// The rig leaves nothing behind: not when a test throws, and not when a whole test host died without disposing its
/// fixtures (the next process to use the rig reclaims the dead owner's directories), while directories of test
/// processes still running beside it are left alone.
/// </summary>
public sealed class RigCleanupTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ThrowInsideAwaitUsing_OfContainerd_LeavesNoDirectoryMountOrProcess()
    {
        string? directory = null;
        int? pid = null;

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await using var containerd = await ContainerdInstance.StartAsync();
            directory = containerd.Directory;
            pid = containerd.ProcessId;
            Assert.Equal(RigDirectory.OwnerRecord(Environment.ProcessId), await File.ReadAllTextAsync(Path.Combine(directory, RigDirectory.OwnerFileName)));
            await MountTmpfsAsync(Path.Combine(directory, "mnt"));
            throw new InvalidOperationException("test failed half-way");
        });

        Assert.Equal("test failed half-way", thrown.Message);
        Assert.NotNull(directory);
        Assert.NotNull(pid);
        Assert.False(Directory.Exists($"/proc/{pid}"), $"containerd (pid {pid}) outlived the test");
        Assert.Empty(RigDirectory.MountsBelow(directory));
        Assert.False(Directory.Exists(directory), $"{directory} outlived the test");
    }

    [Fact]
    public async Task StaleDirectory_DeadOwner_IsReclaimedOnNextFirstUse_WithItsMountAndProcess()
    {
        var stale = await MakeDirectoryOwnedByDeadProcessAsync("stale");
        var mount = Path.Combine(stale, "root", "mnt");
        await MountTmpfsAsync(mount);
        using var orphan = StartSleep(stale);
        Assert.Contains(mount, RigDirectory.MountsBelow(stale));

        // A fresh copy of the rig's assembly has its own first use: what the next test host's first Create runs.
        var context = new AssemblyLoadContext("rig-next-process", isCollectible: true);
        string? fresh = null;
        try
        {
            var rig = context.LoadFromAssemblyPath(typeof(RigDirectory).Assembly.Location).GetType(typeof(RigDirectory).FullName!)!;
            fresh = (string)rig.GetMethod(nameof(RigDirectory.Create))!.Invoke(null, ["next"])!;

            Assert.True(Directory.Exists(fresh));

            // Other test processes of the same run sweep the shared root on their own first use: one of them may be
            // half-way through this directory (ours then skips it as busy), so it must be gone soon, whoever finishes.
            for (var i = 0; i < 100 && Directory.Exists(stale); i++)
            {
                await Task.Delay(50);
            }

            Assert.False(Directory.Exists(stale), $"{stale} (owner dead) was not reclaimed on first use");
            Assert.Empty(RigDirectory.MountsBelow(stale));
            Assert.True(orphan.WaitForExit(TimeSpan.FromSeconds(10)), $"the orphan (pid {orphan.Id}) running in {stale} was not killed");
        }
        finally
        {
            if (fresh is not null)
            {
                await RigDirectory.RemoveAsync(fresh);
            }

            await RigDirectory.RemoveAsync(stale);
            context.Unload();
        }
    }

    [Fact]
    public async Task LiveOwnerAndMissingOwnerFile_AreNotTouched_ReusedPidIs()
    {
        // Owned by another live process (as another test host running beside this one).
        using var owner = StartSleep(Path.GetTempPath());
        var live = Path.Combine(RigDirectory.Root, $"live-{Guid.NewGuid().ToString("N")[..10]}");
        Directory.CreateDirectory(live);
        await File.WriteAllTextAsync(Path.Combine(live, RigDirectory.OwnerFileName), RigDirectory.OwnerRecord(owner.Id));
        await MountTmpfsAsync(Path.Combine(live, "mnt"));
        using var worker = StartSleep(live);

        // No owner file: an older rig's directory, or one being created this instant.
        var unowned = Path.Combine(RigDirectory.Root, $"unowned-{Guid.NewGuid().ToString("N")[..10]}");
        Directory.CreateDirectory(unowned);

        // The pid of a live process (this one) but another start time: the owner died and its pid was reused.
        var reused = Path.Combine(RigDirectory.Root, $"reused-{Guid.NewGuid().ToString("N")[..10]}");
        Directory.CreateDirectory(reused);
        var record = RigDirectory.OwnerRecord(Environment.ProcessId)!.Split(' ');
        await File.WriteAllTextAsync(Path.Combine(reused, RigDirectory.OwnerFileName), $"{record[0]} {ulong.Parse(record[1], System.Globalization.CultureInfo.InvariantCulture) + 1}");

        try
        {
            var reclaimed = await RigDirectory.ReclaimStaleAsync();
            output.WriteLine($"reclaimed: {string.Join(", ", reclaimed)}");

            Assert.DoesNotContain(live, reclaimed);
            Assert.True(File.Exists(Path.Combine(live, RigDirectory.OwnerFileName)));
            Assert.Contains(Path.Combine(live, "mnt"), RigDirectory.MountsBelow(live));
            Assert.False(worker.HasExited, "a process in a live owner's directory was killed");
            Assert.True(Directory.Exists(unowned));
            Assert.Contains(reused, reclaimed);
            Assert.False(Directory.Exists(reused));
        }
        finally
        {
            worker.Kill();
            await worker.WaitForExitAsync();
            await RigDirectory.RemoveAsync(live);
            await RigDirectory.RemoveAsync(unowned);
            await RigDirectory.RemoveAsync(reused);
            owner.Kill();
        }
    }

    /// <summary>A directory in the rig's root whose owner file names a process that ran and is gone.</summary>
    private async Task<string> MakeDirectoryOwnedByDeadProcessAsync(string prefix)
    {
        string record;
        using (var owner = StartSleep(Path.GetTempPath()))
        {
            record = RigDirectory.OwnerRecord(owner.Id) ?? throw new InvalidOperationException("no /proc/<pid>/stat for a running sleep");
            owner.Kill();
            await owner.WaitForExitAsync();
        }

        var directory = Path.Combine(RigDirectory.Root, $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}");
        Directory.CreateDirectory(Path.Combine(directory, "root"));
        await File.WriteAllTextAsync(Path.Combine(directory, RigDirectory.OwnerFileName), record);
        output.WriteLine($"{directory}: owner '{record}' (dead)");
        return directory;
    }

    private static Process StartSleep(string workingDirectory)
    {
        var info = new ProcessStartInfo("sleep", "300") { WorkingDirectory = workingDirectory, UseShellExecute = false };
        return Process.Start(info) ?? throw new InvalidOperationException("could not start sleep");
    }

    private static async Task MountTmpfsAsync(string path)
    {
        Directory.CreateDirectory(path);
        (await ProcessRunner.RunAsync(RequiredTools.Mount, ["-t", "tmpfs", "-o", "size=1m", "tmpfs", path], TimeSpan.FromSeconds(10))).EnsureSuccess();
    }
}
