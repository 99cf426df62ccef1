using Spegel.Hosting;

namespace Spegel.Registry.Mirror;

/// <summary>How the registry looks for content on peers (<c>Spegel:Mirror*</c>).</summary>
public sealed class MirrorOptions : IValidatableOptions
{
    public const string SectionName = "Spegel";

    /// <summary>How many peers are tried for one request (hedged or after a failure) before answering 404.</summary>
    public int MirrorResolveRetries { get; set; } = 3;

    /// <summary>
    /// The whole budget for finding a peer that answers: resolver lookup plus response headers. Past it the
    /// registry answers 404 so containerd goes to the next host; it bounds what a stalled peer can cost.
    /// </summary>
    public TimeSpan MirrorResolveTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The hedge delay used until enough peer latencies were seen to learn one.</summary>
    public TimeSpan MirrorHedgeDelay { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>The largest learned hedge delay.</summary>
    public TimeSpan MirrorMaxHedgeDelay { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>A peer that sends no byte for this long mid-body is dropped and the transfer resumes on another.</summary>
    public TimeSpan MirrorReadTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a lookup answer is reused for the same key (requests for one image arrive together).</summary>
    public TimeSpan MirrorLookupCacheTtl { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a manifest fetched from a peer is kept by digest, so that the GET by digest containerd sends after
    /// its HEAD by tag is answered without a second lookup and peer trip. 0 turns it off.
    /// </summary>
    public TimeSpan MirrorManifestCacheTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a peer that served bytes not matching their digest is tried last.</summary>
    public TimeSpan MirrorBadPeerPenalty { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A whole blob whose peer-advertised size is at most this is read completely into memory and verified before
    /// a byte is sent, so a lying or dying peer is replaced by the next one within the same request instead of
    /// breaking the client's pull. Larger blobs get the same treatment in the spool (<see cref="MirrorSpoolPath"/>).
    /// 0: none in memory.
    /// </summary>
    public long MirrorVerifyBeforeSendBytes { get; set; } = 32L * 1024 * 1024;

    /// <summary>How many blobs may be held in memory for verification at once (bounds memory); past it, the spool.</summary>
    public int MirrorVerifyConcurrency { get; set; } = 4;

    /// <summary>
    /// The directory where blobs larger than <see cref="MirrorVerifyBeforeSendBytes"/> are read whole and verified
    /// before a byte is sent. Empty: no spool, large blobs stream (hashed as they flow; a lie is only caught at the
    /// end and aborts the response, which fails containerd's pull of it once).
    /// </summary>
    public string MirrorSpoolPath { get; set; } = Path.Combine(Path.GetTempPath(), "spegel-mirror-spool");

    /// <summary>The most bytes spooled at once across all requests; a blob that does not fit streams instead.</summary>
    public long MirrorSpoolLimitBytes { get; set; } = 4L * 1024 * 1024 * 1024;

    public IEnumerable<string> Validate()
    {
        if (MirrorResolveRetries is < 1 or > 20)
        {
            yield return $"Spegel:MirrorResolveRetries must be between 1 and 20, not {MirrorResolveRetries}.";
        }

        if (MirrorResolveTimeout < TimeSpan.FromMilliseconds(10) || MirrorResolveTimeout > TimeSpan.FromMinutes(1))
        {
            yield return $"Spegel:MirrorResolveTimeout must be between 10 ms and 1 minute, not {MirrorResolveTimeout}.";
        }

        if (MirrorHedgeDelay < TimeSpan.Zero || MirrorHedgeDelay > MirrorResolveTimeout)
        {
            yield return $"Spegel:MirrorHedgeDelay must be between 0 and Spegel:MirrorResolveTimeout, not {MirrorHedgeDelay}.";
        }

        if (MirrorMaxHedgeDelay < MirrorHedgeDelay)
        {
            yield return $"Spegel:MirrorMaxHedgeDelay must not be below Spegel:MirrorHedgeDelay ({MirrorMaxHedgeDelay} < {MirrorHedgeDelay}).";
        }

        if (MirrorReadTimeout < TimeSpan.FromMilliseconds(100))
        {
            yield return $"Spegel:MirrorReadTimeout must be at least 100 ms, not {MirrorReadTimeout}.";
        }

        if (MirrorManifestCacheTtl < TimeSpan.Zero || MirrorManifestCacheTtl > TimeSpan.FromMinutes(5))
        {
            yield return $"Spegel:MirrorManifestCacheTtl must be between 0 and 5 minutes, not {MirrorManifestCacheTtl}.";
        }

        if (MirrorLookupCacheTtl < TimeSpan.Zero || MirrorLookupCacheTtl > TimeSpan.FromMinutes(1))
        {
            yield return $"Spegel:MirrorLookupCacheTtl must be between 0 and 1 minute, not {MirrorLookupCacheTtl}.";
        }

        if (MirrorVerifyBeforeSendBytes is < 0 or > 1024L * 1024 * 1024)
        {
            yield return $"Spegel:MirrorVerifyBeforeSendBytes must be between 0 (off) and 1 GiB, not {MirrorVerifyBeforeSendBytes}.";
        }

        if (MirrorSpoolPath.Length > 0 && !Path.IsPathFullyQualified(MirrorSpoolPath))
        {
            yield return $"Spegel:MirrorSpoolPath must be an absolute path (or empty for no spool), not '{MirrorSpoolPath}'.";
        }

        if (MirrorSpoolLimitBytes < 0)
        {
            yield return $"Spegel:MirrorSpoolLimitBytes must not be negative (0: no spool), not {MirrorSpoolLimitBytes}.";
        }

        if (MirrorVerifyConcurrency is < 1 or > 256)
        {
            yield return $"Spegel:MirrorVerifyConcurrency must be between 1 and 256, not {MirrorVerifyConcurrency}.";
        }
    }
}
