using System.Text;

namespace Spegel.Core.Tests;

public class ManifestParserTests
{
    private const string A = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string B = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    private const string C = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    private const string D = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

    // Shaped like docker.io/library/nginx's index, attestation manifest included.
    private const string OciIndex = $$"""
        {
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.index.v1+json",
          "manifests": [
            {
              "mediaType": "application/vnd.oci.image.manifest.v1+json",
              "digest": "{{A}}",
              "size": 2295,
              "platform": { "architecture": "amd64", "os": "linux" }
            },
            {
              "mediaType": "application/vnd.oci.image.manifest.v1+json",
              "digest": "{{B}}",
              "size": 2295,
              "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" }
            },
            {
              "mediaType": "application/vnd.oci.image.manifest.v1+json",
              "digest": "{{C}}",
              "size": 841,
              "annotations": {
                "vnd.docker.reference.digest": "{{A}}",
                "vnd.docker.reference.type": "attestation-manifest"
              },
              "platform": { "architecture": "unknown", "os": "unknown" }
            }
          ]
        }
        """;

    private const string OciManifest = $$"""
        {
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": "{{A}}", "size": 8589 },
          "layers": [
            { "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "{{B}}", "size": 28227259 },
            { "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "{{C}}", "size": 626 }
          ],
          "annotations": { "org.opencontainers.image.base.name": "debian:bookworm-slim" }
        }
        """;

    private const string DockerManifestList = $$"""
        {
           "schemaVersion": 2,
           "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
           "manifests": [
              {
                 "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                 "size": 527,
                 "digest": "{{A}}",
                 "platform": { "architecture": "amd64", "os": "linux" }
              },
              {
                 "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                 "size": 527,
                 "digest": "{{B}}",
                 "platform": { "architecture": "arm", "os": "linux", "variant": "v7" }
              }
           ]
        }
        """;

    private const string DockerManifest = $$"""
        {
           "schemaVersion": 2,
           "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 1472, "digest": "{{A}}" },
           "layers": [
              { "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3623807, "digest": "{{B}}" }
           ]
        }
        """;

    // OCI 1.1 referrer: an artifact manifest with a subject and an empty config.
    private const string OciArtifactWithSubject = $$"""
        {
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "artifactType": "application/vnd.example.sbom",
          "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": "{{A}}", "size": 2 },
          "layers": [ { "mediaType": "application/spdx+json", "digest": "{{B}}", "size": 100 } ],
          "subject": { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{{D}}", "size": 1234 }
        }
        """;

    private const string UntypedIndex = $$$"""{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{{{A}}}","size":1}]}""";

    private const string UntypedManifest = $$$"""{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{{A}}}","size":1}}""";

    [Theory]
    [InlineData(MediaTypes.OciIndex, OciIndex, MediaTypes.OciIndex, new[] { A, B, C })]
    [InlineData(null, OciIndex, MediaTypes.OciIndex, new[] { A, B, C })]
    [InlineData(MediaTypes.OciManifest, OciManifest, MediaTypes.OciManifest, new[] { A, B, C })]
    [InlineData(null, OciManifest, MediaTypes.OciManifest, new[] { A, B, C })]
    [InlineData(MediaTypes.DockerManifestList, DockerManifestList, MediaTypes.DockerManifestList, new[] { A, B })]
    [InlineData("application/json", DockerManifestList, MediaTypes.DockerManifestList, new[] { A, B })]
    [InlineData(MediaTypes.DockerManifest, DockerManifest, MediaTypes.DockerManifest, new[] { A, B })]
    [InlineData(MediaTypes.OctetStream, DockerManifest, MediaTypes.DockerManifest, new[] { A, B })]
    [InlineData(null, OciArtifactWithSubject, MediaTypes.OciManifest, new[] { A, B })]
    // Without a mediaType field the shape decides.
    [InlineData(null, UntypedIndex, MediaTypes.OciIndex, new[] { A })]
    [InlineData(null, UntypedManifest, MediaTypes.OciManifest, new[] { A })]
    [InlineData(MediaTypes.DockerManifest, UntypedManifest, MediaTypes.DockerManifest, new[] { A })]
    public void Parse_ValidManifest_ReturnsChildrenInOrder(string? mediaType, string json, string expectedMediaType, string[] expectedDigests)
    {
        var result = ManifestParser.Parse(mediaType, Encoding.UTF8.GetBytes(json));

        Assert.True(result.IsSuccess, result.Error);
        Assert.Equal(expectedMediaType, result.MediaType);
        Assert.Equal(expectedDigests, result.Children.Select(d => d.Digest.ToString()));
    }

    [Fact]
    public void Parse_OciIndex_ReadsPlatformsAndAnnotations()
    {
        var result = ManifestParser.Parse(MediaTypes.OciIndex, Encoding.UTF8.GetBytes(OciIndex));

        Assert.Equal(
            [new Platform("amd64", "linux"), new Platform("arm64", "linux", "v8"), new Platform("unknown", "unknown")],
            result.Children.Select(d => d.Platform));
        Assert.Equal(2295, result.Children[0].Size);
        Assert.Equal("attestation-manifest", result.Children[2].Annotations?["vnd.docker.reference.type"]);
        Assert.Null(result.Subject);
    }

    [Fact]
    public void Parse_ImageManifest_PutsConfigFirst()
    {
        var result = ManifestParser.Parse(MediaTypes.OciManifest, Encoding.UTF8.GetBytes(OciManifest));

        Assert.Equal(
            [MediaTypes.OciConfig, MediaTypes.OciLayerGzip, MediaTypes.OciLayerGzip],
            result.Children.Select(d => d.MediaType));
        Assert.Equal(28227259, result.Children[1].Size);
    }

    [Fact]
    public void Parse_ManifestWithSubject_ExposesSubjectApartFromChildren()
    {
        var result = ManifestParser.Parse(null, Encoding.UTF8.GetBytes(OciArtifactWithSubject));

        Assert.Equal(D, result.Subject?.Digest.ToString());
        Assert.DoesNotContain(result.Children, d => d.Digest.ToString() == D);
    }

    [Theory]
    [InlineData(null, "<html><body>502 Bad Gateway</body></html>", "not valid manifest JSON")]
    [InlineData(null, "", "not valid manifest JSON")]
    [InlineData(null, "null", "not valid manifest JSON")]
    [InlineData(null, "[]", "not valid manifest JSON")]
    [InlineData(null, "{\"schemaVersion\":2,", "not valid manifest JSON")]
    [InlineData(null, "{}", "neither an index")]
    [InlineData(MediaTypes.OciManifest, "{\"schemaVersion\":\"two\"}", "not valid manifest JSON")]
    [InlineData(null, "{\"schemaVersion\":1,\"fsLayers\":[]}", "schema 1")]
    [InlineData(null, "{\"mediaType\":\"application/vnd.oci.artifact.manifest.v1+json\",\"blobs\":[]}", "unsupported manifest media type")]
    // The content must say what its descriptor says.
    [InlineData(MediaTypes.OciIndex, OciManifest, "media type mismatch")]
    [InlineData(MediaTypes.DockerManifest, OciManifest, "media type mismatch")]
    // Shape confusion: an index with layers, a manifest with manifests, an index missing manifests.
    [InlineData(MediaTypes.OciIndex, """{"manifests":[],"layers":[]}""", "must have 'manifests' and no")]
    [InlineData(MediaTypes.OciIndex, $$$"""{"config":{"mediaType":"x","digest":"{{{A}}}","size":1}}""", "must have 'manifests' and no")]
    [InlineData(MediaTypes.OciManifest, $$$"""{"config":{"mediaType":"x","digest":"{{{A}}}","size":1},"manifests":[]}""", "must have 'config' and no")]
    [InlineData(MediaTypes.OciManifest, """{"layers":[]}""", "must have 'config' and no")]
    // Bad descriptors.
    [InlineData(null, """{"manifests":[{"mediaType":"x","digest":"sha256:abc","size":1}]}""", "manifests[0]: invalid digest 'sha256:abc'")]
    [InlineData(null, $$$"""{"config":{"mediaType":"x","digest":"{{{A}}}","size":1},"layers":[{"mediaType":"x","digest":"{{{B}}}","size":1},{"mediaType":"x","digest":"md5:0","size":1}]}""", "layers[1]: invalid digest")]
    [InlineData(null, """{"config":{"mediaType":"x","digest":"SHA256:AAAA","size":1}}""", "config: invalid digest")]
    [InlineData(null, """{"config":{"mediaType":"x","size":1}}""", "config: invalid digest '(none)'")]
    [InlineData(null, $$$"""{"config":{"digest":"{{{A}}}","size":1}}""", "config: descriptor has no mediaType")]
    [InlineData(null, $$$"""{"config":{"mediaType":"x","digest":"{{{A}}}"}}""", "config: descriptor has no size")]
    [InlineData(null, $$$"""{"config":{"mediaType":"x","digest":"{{{A}}}","size":-1}}""", "config: descriptor size -1 is negative")]
    [InlineData(null, $$$"""{"config":{"mediaType":"x","digest":"{{{A}}}","size":1e3}}""", "not valid manifest JSON")]
    [InlineData(null, $$$"""{"config":{"mediaType":"x","digest":"{{{A}}}","size":1},"layers":[null]}""", "layers[0]: descriptor is null")]
    [InlineData(null, $$$"""{"manifests":[{"mediaType":"x","digest":"{{{A}}}","size":1,"platform":{"architecture":"amd64"}}]}""", "manifests[0]: platform needs architecture and os")]
    [InlineData(null, $$$"""{"config":{"mediaType":"x","digest":"{{{A}}}","size":1},"subject":{"mediaType":"x","digest":"nope","size":1}}""", "subject: invalid digest")]
    [InlineData(null, $$$"""{"manifests":[{"mediaType":"x","digest":"{{{A}}}","size":1,"annotations":{"k":1}}]}""", "not valid manifest JSON")]
    // Duplicate keys are a parser-confusion trick: refused, not last-one-wins.
    [InlineData(null, $$$"""{"mediaType":"application/vnd.oci.image.manifest.v1+json","mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}""", "not valid manifest JSON")]
    [InlineData(null, $$$"""{"manifests":[{"mediaType":"x","digest":"{{{A}}}","digest":"{{{B}}}","size":1}]}""", "not valid manifest JSON")]
    public void Parse_InvalidContent_ReturnsError(string? mediaType, string body, string expectedError)
    {
        var result = ManifestParser.Parse(mediaType, Encoding.UTF8.GetBytes(body));

        Assert.False(result.IsSuccess);
        Assert.Contains(expectedError, result.Error, StringComparison.Ordinal);
        Assert.Empty(result.Children);
    }

    [Fact]
    public void Parse_NonUtf8Bytes_ReturnsError()
    {
        var result = ManifestParser.Parse(null, [0xff, 0xfe, 0x00, 0x7b]);

        Assert.False(result.IsSuccess);
    }

    [Fact]
    public void Parse_HugeInvalidDigest_QuotesItShortly()
    {
        var body = $$$"""{"config":{"mediaType":"x","digest":"sha256:{{{new string('a', 100_000)}}}","size":1}}""";

        var result = ManifestParser.Parse(null, Encoding.UTF8.GetBytes(body));

        Assert.False(result.IsSuccess);
        Assert.True(result.Error.Length < 200, result.Error);
    }
}
