using Spegel.TestRig;

namespace Spegel.Aot.Tests;

/// <summary>
/// Node A: a real containerd holding two test images pulled from a real upstream, and the AOT-published registry
/// serving it. Images are built while the AOT publish runs.
/// </summary>
public sealed class AotRegistryFixture : IAsyncLifetime
{
    public UpstreamRegistry Upstream { get; private set; } = null!;

    public ContainerdInstance A { get; private set; } = null!;

    public SpegelServiceProcess RegistryA { get; private set; } = null!;

    public string Executable { get; private set; } = null!;

    public TestImage SingleLayer { get; private set; } = null!;

    public TestImage MultiLayer { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var publishing = AotRegistry.ExecutableAsync();
        Upstream = await UpstreamRegistry.StartAsync();
        A = await ContainerdInstance.StartAsync();
        var images = new TestImages(Upstream);
        SingleLayer = await images.SingleLayerAsync();
        MultiLayer = await images.MultiLayerAsync();
        (await A.PullAsync(SingleLayer.Reference)).EnsureSuccess();
        (await A.PullAsync(MultiLayer.Reference)).EnsureSuccess();
        Executable = await publishing;
        RegistryA = await StartRegistryAsync(A, "node-a");
    }

    /// <summary>The AOT registry over <paramref name="containerd"/>, healthy, with <paramref name="extra"/> arguments.</summary>
    public Task<SpegelServiceProcess> StartRegistryAsync(ContainerdInstance containerd, string node, params string[] extra) =>
        SpegelServiceProcess.StartHealthyAsync(Options(containerd, node, Executable, extra));

    /// <summary>How node <paramref name="node"/>'s registry is started; <paramref name="executable"/> null runs the JIT build.</summary>
    public static SpegelServiceOptions Options(ContainerdInstance containerd, string node, string? executable, params string[] extra) => new()
    {
        Service = "registry",
        Name = node + (executable is null ? "-jit" : "-aot"),
        Executable = executable,
        Arguments =
        [
            $"--Spegel:Node:Name={node}",
            "--Spegel:Node:Address={url}",
            $"--Spegel:Containerd:Socket={containerd.Socket}",
            $"--Spegel:Containerd:ContentPath={containerd.ContentPath}",
            $"--Spegel:Containerd:Namespace={containerd.Namespace}",
            .. extra,
        ],
    };

    public async Task DisposeAsync()
    {
        if (RegistryA is not null)
        {
            await RegistryA.DisposeAsync();
        }

        if (A is not null)
        {
            await A.DisposeAsync();
        }

        if (Upstream is not null)
        {
            await Upstream.DisposeAsync();
        }
    }
}
