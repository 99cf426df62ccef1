using System.Diagnostics.CodeAnalysis;

namespace Spegel.Core;

/// <summary>
/// A content digest, <c>algorithm:hex</c>. Only sha256 (64 hex) and sha512 (128 hex) are accepted,
/// lower-case hex only, as the OCI image spec registers them. An invalid digest cannot be constructed.
/// </summary>
public readonly record struct Digest
{
    public const string Sha256 = "sha256";
    public const string Sha512 = "sha512";

    private Digest(string algorithm, string hex)
    {
        Algorithm = algorithm;
        Hex = hex;
    }

    public string Algorithm { get; }

    public string Hex { get; }

    public bool IsDefault => Algorithm is null;

    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest)
    {
        digest = default;
        if (value is null)
        {
            return false;
        }

        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            return false;
        }

        var algorithm = value[..colon];
        var expected = algorithm switch
        {
            Sha256 => 64,
            Sha512 => 128,
            _ => -1,
        };
        if (expected < 0 || value.Length - colon - 1 != expected)
        {
            return false;
        }

        var hex = value.AsSpan(colon + 1);
        foreach (var c in hex)
        {
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f'))
            {
                return false;
            }
        }

        digest = new Digest(algorithm == Sha256 ? Sha256 : Sha512, hex.ToString());
        return true;
    }

    public static Digest Parse(string value) =>
        TryParse(value, out var d) ? d : throw new FormatException($"'{value}' is not a valid digest (expected sha256:<64 hex> or sha512:<128 hex>).");

    /// <summary>The sha256 digest of the given bytes.</summary>
    public static Digest FromSha256Bytes(ReadOnlySpan<byte> hash) =>
        hash.Length == 32 ? new Digest(Sha256, Convert.ToHexStringLower(hash)) : throw new ArgumentException("A sha256 hash is 32 bytes.", nameof(hash));

    /// <summary>The sha512 digest of the given bytes.</summary>
    public static Digest FromSha512Bytes(ReadOnlySpan<byte> hash) =>
        hash.Length == 64 ? new Digest(Sha512, Convert.ToHexStringLower(hash)) : throw new ArgumentException("A sha512 hash is 64 bytes.", nameof(hash));

    /// <summary>Computes the sha256 digest of a buffer (small content: manifests, configs, tests).</summary>
    public static Digest ComputeSha256(ReadOnlySpan<byte> content) => FromSha256Bytes(System.Security.Cryptography.SHA256.HashData(content));

    public override string ToString() => IsDefault ? string.Empty : $"{Algorithm}:{Hex}";
}
