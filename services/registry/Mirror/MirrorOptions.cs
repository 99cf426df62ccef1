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
    /// A whole blob whose peer-advertised size is at most this is read completely and verified before a byte is
    /// sent, so a lying or dying peer is replaced by the next one within the same request instead of breaking the
    /// client's pull. Larger blobs stream (verified as they flow, aborted on a mismatch). 0 turns it off.
    /// </summary>
    public long MirrorVerifyBeforeSendBytes { get; set; } = 32L * 1024 * 1024;

    /// <summary>How many blobs may be held for verification at once (bounds memory); past it, blobs stream.</summary>
    public int MirrorVerifyConcurrency { get; set; } = 4;

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

        if (MirrorVerifyConcurrency is < 1 or > 256)
        {
            yield return $"Spegel:MirrorVerifyConcurrency must be between 1 and 256, not {MirrorVerifyConcurrency}.";
        }
    }
}
