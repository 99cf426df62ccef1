using Spegel.Core;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.TestRig;

namespace Spegel.EndToEnd.Tests.Support;

/// <summary>
/// A real registry process that lies: it answers from a node's containerd (so it knows the image, its sizes, its
/// manifests) but reads blob files from a corrupted copy of that node's content directory, so every config and
/// layer it serves has the right length and the wrong bytes.
/// </summary>
internal sealed class LyingRegistry : IAsyncDisposable
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    private LyingRegistry(SpegelServiceProcess service, string directory, IReadOnlySet<Digest> corrupted)
    {
        Service = service;
        Directory = directory;
        Corrupted = corrupted;
    }

    /// <summary>The digests this liar serves wrong bytes for.</summary>
    public IReadOnlySet<Digest> Corrupted { get; }

    public SpegelServiceProcess Service { get; }

    public string Directory { get; }

    public string Url => Service.Url;

    /// <summary>Starts a liar for <paramref name="images"/>: every config and layer corrupted, or with <c>LayersOnly</c> the layers only.</summary>
    public static async Task<LyingRegistry> StartAsync(LocalCluster cluster, ClusterNode source, IEnumerable<(TestImage Image, bool LayersOnly)> images)
    {
        var directory = Path.Combine(cluster.Directory, "liar");
        var content = Path.Combine(directory, "content");
        var corrupted = new HashSet<Digest>();
        foreach (var (image, layersOnly) in images)
        {
            foreach (var blob in image.NativeBlobs)
            {
                var target = Path.Combine(content, "blobs", blob.Digest.Algorithm, blob.Digest.Hex);
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(source.Containerd.BlobPath(blob.Digest), target, overwrite: true);
                var isConfig = blob.MediaType is MediaTypes.OciConfig or MediaTypes.DockerConfig;
                if (!MediaTypes.IsManifest(blob.MediaType) && !(layersOnly && isConfig))
                {
                    Corrupt(target);
                    corrupted.Add(blob.Digest);
                }
            }
        }

        var service = await SpegelServiceProcess.StartHealthyAsync(new SpegelServiceOptions
        {
            Service = "registry",
            Name = "liar",
            LogDirectory = directory,
            Arguments =
            [
                "--Spegel:Node:Name=liar",
                "--Spegel:Node:Address={url}",
                $"--Spegel:Containerd:Socket={source.Containerd.Socket}",
                $"--Spegel:Containerd:ContentPath={content}",
                $"--Spegel:Containerd:Namespace={source.Containerd.Namespace}",
            ],
        });
        await service.WaitForReadyAsync(TimeSpan.FromSeconds(10));
        return new LyingRegistry(service, directory, corrupted);
    }

    /// <summary>
    /// GETs one blob or manifest from a registry as a peer would (<c>X-Spegel-Mirrored</c>, with the cluster's peer
    /// token when it has one) and returns the digest of what came.
    /// </summary>
    public static async Task<Digest> FetchAsync(string registryUrl, TestImage image, Descriptor blob, string? peerToken = null)
    {
        var kind = MediaTypes.IsManifest(blob.MediaType) ? "manifests" : "blobs";
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(new Uri(registryUrl), $"/v2/{image.Repository}/{kind}/{blob.Digest}?ns={image.Registry}"));
        request.Headers.Add("X-Spegel-Mirrored", "true");
        if (peerToken is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", peerToken);
        }

        using var response = await Http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return Digest.ComputeSha256(await response.Content.ReadAsByteArrayAsync());
    }

    public ValueTask DisposeAsync() => Service.DisposeAsync();

    /// <summary>Flips one byte at the start, the middle and the end: same length, wrong digest, wrong from the first chunk on.</summary>
    private static void Corrupt(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        foreach (var position in new[] { 0, file.Length / 2, file.Length - 1 })
        {
            file.Position = position;
            var b = file.ReadByte();
            file.Position = position;
            file.WriteByte((byte)(b ^ 0xFF));
        }
    }
}
