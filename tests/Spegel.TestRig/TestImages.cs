using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Spegel.Core;

namespace Spegel.TestRig;

/// <summary>
/// Builds images with random content at test time (nothing binary is committed), pushes them to an
/// <see cref="UpstreamRegistry"/> with skopeo, and describes them from what the registry then serves.
/// Every call builds a new image under a new repository unless one is given; the large image is built once per
/// instance, and only when asked for.
/// </summary>
public sealed class TestImages
{
    public const long LargeLayerDefaultSize = 100L * 1024 * 1024;

    private static readonly string[] ManifestAccept = [MediaTypes.OciIndex, MediaTypes.OciManifest, MediaTypes.DockerManifestList, MediaTypes.DockerManifest];
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private readonly UpstreamRegistry _registry;
    private readonly Lazy<Task<TestImage>> _large;

    public TestImages(UpstreamRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        _registry = registry;
        _large = new Lazy<Task<TestImage>>(() => BuildAsync(TestImageKind.LargeLayer, null, "v1", CancellationToken.None));
    }

    /// <summary>The platform a default pull on this machine selects (linux/amd64 here).</summary>
    public static Platform NativePlatform => PlatformNames.Native;

    /// <summary>The two platforms of the multi-platform image.</summary>
    public static IReadOnlyList<Platform> MultiPlatforms { get; } = [new("amd64", "linux"), new("arm64", "linux")];

    /// <summary>(1) An OCI image with one layer of about 200 KiB (several gRPC read chunks).</summary>
    public Task<TestImage> SingleLayerAsync(string? repository = null, string tag = "v1", CancellationToken ct = default) =>
        BuildAsync(TestImageKind.SingleLayer, repository, tag, ct);

    /// <summary>(2) An OCI image with three layers of different sizes.</summary>
    public Task<TestImage> MultiLayerAsync(string? repository = null, string tag = "v1", CancellationToken ct = default) =>
        BuildAsync(TestImageKind.MultiLayer, repository, tag, ct);

    /// <summary>(3) An OCI index with linux/amd64 and linux/arm64 images; a pull fetches only <see cref="NativePlatform"/>.</summary>
    public Task<TestImage> MultiPlatformAsync(string? repository = null, string tag = "v1", CancellationToken ct = default) =>
        BuildAsync(TestImageKind.MultiPlatform, repository, tag, ct);

    /// <summary>(4) A Docker schema 2 image (converted by <c>skopeo copy --format v2s2</c>).</summary>
    public Task<TestImage> DockerSchema2Async(string? repository = null, string tag = "v1", CancellationToken ct = default) =>
        BuildAsync(TestImageKind.DockerSchema2, repository, tag, ct);

    /// <summary>(5) One layer of ≥ 100 MiB, built on first use and shared by later calls on this instance.</summary>
    public Task<TestImage> LargeLayerAsync() => _large.Value;

    /// <summary>The four small images (1–4), built concurrently.</summary>
    public async Task<IReadOnlyList<TestImage>> SmallImagesAsync(CancellationToken ct = default) =>
        await Task.WhenAll(
            SingleLayerAsync(ct: ct),
            MultiLayerAsync(ct: ct),
            MultiPlatformAsync(ct: ct),
            DockerSchema2Async(ct: ct)).ConfigureAwait(false);

    /// <summary>Builds an image of <paramref name="kind"/>, pushes it as <c>repository:tag</c> and returns its description.</summary>
    public async Task<TestImage> BuildAsync(TestImageKind kind, string? repository, string tag, CancellationToken ct, long? largeLayerSize = null)
    {
        repository ??= $"rig/{kind.ToString().ToLowerInvariant()}-{Guid.NewGuid().ToString("N")[..8]}";
        var skopeo = RequiredTools.Skopeo;
        var workDir = RigDirectory.Create("img");
        try
        {
            var layout = new OciLayout(workDir);
            var root = kind switch
            {
                TestImageKind.SingleLayer => await WriteImageAsync(layout, NativePlatform, [200 * 1024], ct).ConfigureAwait(false),
                TestImageKind.MultiLayer => await WriteImageAsync(layout, NativePlatform, [48 * 1024, 96 * 1024 + 7, 8 * 1024], ct).ConfigureAwait(false),
                TestImageKind.DockerSchema2 => await WriteImageAsync(layout, NativePlatform, [64 * 1024, 16 * 1024], ct).ConfigureAwait(false),
                TestImageKind.LargeLayer => await WriteImageAsync(layout, NativePlatform, [largeLayerSize ?? LargeLayerDefaultSize], ct).ConfigureAwait(false),
                TestImageKind.MultiPlatform => await WriteIndexAsync(layout, ct).ConfigureAwait(false),
                _ => throw new ArgumentOutOfRangeException(nameof(kind)),
            };
            layout.Tag(root, tag);

            var destination = $"docker://{_registry.Host}/{repository}:{tag}";
            var args = new List<string> { "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false" };
            args.AddRange(kind switch
            {
                TestImageKind.DockerSchema2 => ["--format", "v2s2"],
                TestImageKind.MultiPlatform => ["--all", "--preserve-digests"],
                _ => ["--preserve-digests"],
            });
            args.Add($"oci:{workDir}:{tag}");
            args.Add(destination);
            var push = await ProcessRunner.RunAsync(skopeo, args, TimeSpan.FromSeconds(120), workDir, ct).ConfigureAwait(false);
            push.EnsureSuccess();

            var image = await DescribeAsync(repository, tag, ct).ConfigureAwait(false);
            if (kind != TestImageKind.DockerSchema2 && image.Digest != root.Digest)
            {
                throw new InvalidOperationException($"The registry serves {image.Reference} as {image.Digest}, but {root.Digest} was pushed.");
            }

            return image;
        }
        finally
        {
            await RigDirectory.RemoveAsync(workDir).ConfigureAwait(false);
        }
    }

    /// <summary>Describes <c>repository:reference</c> as the registry serves it now: root, manifests, configs, layers.</summary>
    public async Task<TestImage> DescribeAsync(string repository, string tag, CancellationToken ct = default)
    {
        var (rootBytes, rootMediaType) = await GetManifestAsync(repository, tag, ct).ConfigureAwait(false);
        var root = new Descriptor(rootMediaType, Digest.ComputeSha256(rootBytes), rootBytes.Length);
        var manifests = new List<TestManifest>();
        if (MediaTypes.IsIndex(rootMediaType))
        {
            using var index = JsonDocument.Parse(rootBytes);
            foreach (var entry in index.RootElement.GetProperty("manifests").EnumerateArray())
            {
                var descriptor = ParseDescriptor(entry);
                var (bytes, _) = await GetManifestAsync(repository, descriptor.Digest.ToString(), ct).ConfigureAwait(false);
                manifests.Add(ParseManifest(descriptor, bytes, descriptor.Platform ?? throw new InvalidDataException("index entry without platform")));
            }
        }
        else
        {
            using var manifest = JsonDocument.Parse(rootBytes);
            var config = ParseDescriptor(manifest.RootElement.GetProperty("config"));
            var configBytes = await GetBlobAsync(repository, config.Digest, ct).ConfigureAwait(false);
            using var configJson = JsonDocument.Parse(configBytes);
            var platform = new Platform(
                configJson.RootElement.GetProperty("architecture").GetString()!,
                configJson.RootElement.GetProperty("os").GetString()!,
                configJson.RootElement.TryGetProperty("variant", out var v) ? v.GetString() : null);
            manifests.Add(ParseManifest(root, rootBytes, platform));
        }

        return new TestImage($"{_registry.Host}/{repository}:{tag}", _registry.Host, repository, tag, root, manifests);
    }

    private static async Task<Descriptor> WriteImageAsync(OciLayout layout, Platform platform, long[] layerSizes, CancellationToken ct)
    {
        var layers = new List<Descriptor>();
        var diffIds = new List<Digest>();
        foreach (var size in layerSizes)
        {
            var (blob, diffId) = await layout.WriteRandomLayerAsync(size, ct).ConfigureAwait(false);
            layers.Add(blob);
            diffIds.Add(diffId);
        }

        var config = layout.WriteConfig(platform, diffIds);
        return layout.WriteManifest(config, layers);
    }

    private static async Task<Descriptor> WriteIndexAsync(OciLayout layout, CancellationToken ct)
    {
        var manifests = new List<Descriptor>();
        foreach (var platform in MultiPlatforms)
        {
            var manifest = await WriteImageAsync(layout, platform, [24 * 1024, 40 * 1024], ct).ConfigureAwait(false);
            manifests.Add(manifest with { Platform = platform });
        }

        return layout.WriteIndex(manifests);
    }

    private static TestManifest ParseManifest(Descriptor descriptor, byte[] bytes, Platform platform)
    {
        using var json = JsonDocument.Parse(bytes);
        var config = ParseDescriptor(json.RootElement.GetProperty("config"));
        var layers = json.RootElement.GetProperty("layers").EnumerateArray().Select(ParseDescriptor).ToList();
        return new TestManifest(descriptor with { Platform = platform }, platform, config, layers);
    }

    private static Descriptor ParseDescriptor(JsonElement element)
    {
        Platform? platform = null;
        if (element.TryGetProperty("platform", out var p))
        {
            platform = new Platform(
                p.GetProperty("architecture").GetString()!,
                p.GetProperty("os").GetString()!,
                p.TryGetProperty("variant", out var v) ? v.GetString() : null);
        }

        return new Descriptor(
            element.GetProperty("mediaType").GetString()!,
            Digest.Parse(element.GetProperty("digest").GetString()!),
            element.GetProperty("size").GetInt64())
        { Platform = platform };
    }

    private async Task<(byte[] Bytes, string MediaType)> GetManifestAsync(string repository, string reference, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_registry.Url, $"/v2/{repository}/manifests/{reference}"));
        foreach (var accept in ManifestAccept)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        }

        using var response = await Http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"GET manifest {repository}:{reference} from {_registry.Host} answered {(int)response.StatusCode}.");
        }

        var bytes = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        var mediaType = response.Content.Headers.ContentType?.MediaType ?? throw new InvalidDataException("manifest without Content-Type");
        return (bytes, mediaType);
    }

    private async Task<byte[]> GetBlobAsync(string repository, Digest digest, CancellationToken ct)
    {
        using var response = await Http.GetAsync(new Uri(_registry.Url, $"/v2/{repository}/blobs/{digest}"), ct).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
    }
}
