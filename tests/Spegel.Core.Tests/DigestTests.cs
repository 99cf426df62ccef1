using Spegel.Core;

namespace Spegel.Core.Tests;

public class DigestTests
{
    private const string Hex64 = "5fcf7ef29eb9819794924a97aba79c77c8810292cad53a90cbda7be1bd892d33";

    [Theory]
    [InlineData("sha256:" + Hex64, true)]
    [InlineData("sha512:" + Hex64 + Hex64, true)]
    [InlineData("sha256:" + "5fcf7ef29eb98197", false)] // short hex
    [InlineData("sha384:" + Hex64, false)] // unknown algorithm
    [InlineData("md5:" + Hex64, false)]
    [InlineData("SHA256:" + Hex64, false)]
    [InlineData("sha256:5FCF7EF29EB9819794924A97ABA79C77C8810292CAD53A90CBDA7BE1BD892D33", false)] // upper-case hex
    [InlineData("sha256:" + Hex64 + "0", false)]
    [InlineData("sha256:" + "zfcf7ef29eb9819794924a97aba79c77c8810292cad53a90cbda7be1bd892d33", false)]
    [InlineData("sha256" + Hex64, false)]
    [InlineData(":" + Hex64, false)]
    [InlineData("sha256:", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    [InlineData("sha256:%35fcf7ef29eb9819794924a97aba79c77c8810292cad53a90cbda7be1bd892d3", false)]
    public void TryParse_Input_ValidOnlyForRegisteredAlgorithms(string? input, bool valid)
    {
        Assert.Equal(valid, Digest.TryParse(input, out var digest));
        if (valid)
        {
            Assert.Equal(input, digest.ToString());
        }
        else
        {
            Assert.True(digest.IsDefault);
        }
    }

    [Fact]
    public void ComputeSha256_Abc_MatchesKnownVector()
    {
        var digest = Digest.ComputeSha256("abc"u8);
        Assert.Equal("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", digest.ToString());
    }

    [Fact]
    public void Parse_Invalid_ThrowsFormatExceptionNamingInput()
    {
        var ex = Assert.Throws<FormatException>(() => Digest.Parse("sha256:nope"));
        Assert.Contains("sha256:nope", ex.Message, StringComparison.Ordinal);
    }
}
