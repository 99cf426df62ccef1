using Spegel.TestRig;

namespace Spegel.Containerd.Tests;

/// <summary>
/// One registry with the four small test images, and one containerd that pulled them all with <c>ctr</c>.
/// Read-only for the tests that share it: tests that change containerd or the registry start their own.
/// </summary>
public sealed class PulledImagesFixture : IAsyncLifetime
{
    private readonly Dictionary<TestImageKind, TestImage> _images = [];

    public UpstreamRegistry Registry { get; private set; } = null!;

    public ContainerdInstance Containerd { get; private set; } = null!;

    public ContainerdClient Client { get; private set; } = null!;

    public TestImage this[TestImageKind kind] => _images[kind];

    public IEnumerable<TestImage> Images => _images.Values;

    public async Task InitializeAsync()
    {
        var registry = UpstreamRegistry.StartAsync();
        var containerd = ContainerdInstance.StartAsync();
        Registry = await registry;
        Containerd = await containerd;
        Client = new ContainerdClient(ClientOptions(Containerd));

        var images = new TestImages(Registry);
        var built = await Task.WhenAll(
            images.SingleLayerAsync(),
            images.MultiLayerAsync(),
            images.MultiPlatformAsync(),
            images.DockerSchema2Async());
        _images[TestImageKind.SingleLayer] = built[0];
        _images[TestImageKind.MultiLayer] = built[1];
        _images[TestImageKind.MultiPlatform] = built[2];
        _images[TestImageKind.DockerSchema2] = built[3];

        foreach (var pull in await Task.WhenAll(_images.Values.Select(i => Containerd.PullAsync(i.Reference))))
        {
            pull.EnsureSuccess();
        }
    }

    public async Task DisposeAsync()
    {
        if (Client is not null)
        {
            await Client.DisposeAsync();
        }

        if (Containerd is not null)
        {
            await Containerd.DisposeAsync();
        }

        if (Registry is not null)
        {
            await Registry.DisposeAsync();
        }
    }

    public static ContainerdOptions ClientOptions(ContainerdInstance containerd) => new()
    {
        Socket = containerd.Socket,
        Namespace = containerd.Namespace,
        ContentPath = containerd.ContentPath,
    };
}
