using CsCheck;
using Spegel.Core;
using Spegel.Core.Events;

namespace Spegel.Core.Tests;

/// <summary>
/// Generated hostile input for every parser that sees network data: none may throw, hang, or accept something
/// that does not round-trip to an equally valid value.
/// </summary>
public class ParserFuzzTests
{
    private const int Iterations = 5_000;

    // Characters that matter to the grammars, plus noise: separators, traversal, encodings, unicode look-alikes.
    private static readonly Gen<char> Interesting = Gen.OneOf(
        Gen.Char['a', 'z'], Gen.Char['A', 'Z'], Gen.Char['0', '9'],
        Gen.OneOf('/', ':', '@', '.', '_', '-', '%', '?', '=', '&', '\\', ' ', '\0', '\n', '\u2024', '\uff0f', '\u0430'));

    private static readonly Gen<string> Noise = Interesting.Array[0, 300].Select(c => new string(c));

    // Strings built from valid-looking pieces, so the generator reaches deep into the grammars instead of failing early.
    private static readonly Gen<string> Pieces = Gen.OneOf(
        "/v2/", "library", "nginx", "manifests", "blobs", "sha256:", "sha512:", new string('a', 64), new string('f', 128),
        "..", ".", "//", "%2e", "%2F", "latest", ":", "@", "docker.io", "localhost:5000", "A", "-", "_", "__", new string('t', 129))
        .Array[0, 12].Select(p => string.Concat(p));

    private static readonly Gen<string> Inputs = Gen.OneOf(Noise, Pieces);

    [Fact]
    public void DigestTryParse_AnyInput_NeverThrowsAndAcceptedValuesRoundTrip()
    {
        Inputs.Sample(s =>
        {
            if (Digest.TryParse(s, out var d))
            {
                Assert.Equal(s, d.ToString());
            }
        }, iter: Iterations);
    }

    [Fact]
    public void ReferenceTryParse_AnyInput_NeverThrowsAndAcceptedValuesRoundTrip()
    {
        Inputs.Sample(s =>
        {
            if (Reference.TryParse(s, out var r))
            {
                Assert.True(Reference.TryParse(r.ToString(), out var again));
                Assert.Equal(r, again);
            }
        }, iter: Iterations);
    }

    [Fact]
    public void DistributionPathTryParse_AnyPathAndNs_NeverThrowsAndAcceptedPathsRoundTrip()
    {
        Gen.Select(Inputs, Gen.OneOf(Gen.Const((string?)null), Inputs.Select(s => (string?)s))).Sample((path, ns) =>
        {
            if (DistributionPath.TryParse(path, ns, out var parsed, out var error))
            {
                Assert.Equal(DistributionPathError.None, error);
                Assert.True(DistributionPath.TryParse(parsed.ToPath(), parsed.Registry, out var again, out _));
                Assert.Equal(parsed.ToPathAndQuery(), again.ToPathAndQuery());
                Assert.DoesNotContain("..", parsed.ToPath(), StringComparison.Ordinal);
            }
            else
            {
                Assert.NotEqual(DistributionPathError.None, error);
            }
        }, iter: Iterations);
    }

    [Fact]
    public void ManifestParserParse_AnyBytes_ReturnsResultNeverThrows()
    {
        var json = Gen.OneOf("{", "}", "[", "]", "\"mediaType\":", "\"manifests\":", "\"layers\":", "\"config\":", "\"digest\":",
            "\"size\":", "\"sha256:" + new string('a', 64) + "\"", "-1", "1e309", "null", ",", "\"platform\":{\"os\":\"linux\"}", "\"schemaVersion\":2")
            .Array[0, 40].Select(p => System.Text.Encoding.UTF8.GetBytes(string.Concat(p)));
        Gen.Select(Gen.OneOf(json, Gen.Byte.Array[0, 512]), Gen.OneOf<string?>(null, MediaTypes.OciIndex, MediaTypes.OciManifest, MediaTypes.DockerManifest, "text/plain"))
            .Sample((bytes, mediaType) =>
            {
                var result = ManifestParser.Parse(mediaType, bytes);
                Assert.True(result.IsSuccess || result.Error is not null);
            }, iter: Iterations);
    }

    [Fact]
    public void ContentEventDeserialize_AnyJson_EitherAnEventOrAJsonException()
    {
        var json = Gen.OneOf("{", "}", "\"kind\":", "\"advertised\"", "\"snapshot\"", "\"withdrawn\"", "\"heartbeat\"", "\"bogus\"", "\"node\":\"n\"",
            "\"address\":\"http://x\"", "\"epoch\":", "\"sequence\":", "1", "-9223372036854775809", "\"digests\":[\"x\"]", "\"tags\":[{}]", ",", ":", "null", "[", "]")
            .Array[0, 30].Select(p => string.Concat(p));
        json.Sample(text =>
        {
            try
            {
                _ = System.Text.Json.JsonSerializer.Deserialize(text, ContentEventJsonContext.Default.ContentEvent);
            }
            catch (System.Text.Json.JsonException)
            {
                // Rejected as malformed: what the resolver turns into DROP.
            }
            catch (NotSupportedException)
            {
                // An unknown or missing "kind": also a DROP.
            }
        }, iter: Iterations);
    }
}
