using Spegel.Core;
using Spegel.Core.Events;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.TestRig;

namespace Spegel.EndToEnd.Tests.Support;

/// <summary>Tells the resolver that a node which is not a real cluster node holds content, exactly as an indexer would.</summary>
internal static class FakeAdvertiser
{
    /// <summary>POSTs a <see cref="ContentAdvertised"/> for every native digest of <paramref name="images"/> and their tags, from <paramref name="node"/> at <paramref name="url"/>.</summary>
    public static async Task AdvertiseAsync(ResolverApi resolver, string node, string url, params TestImage[] images)
    {
        var advertised = new ContentAdvertised
        {
            Node = node,
            Address = url,
            Epoch = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            Sequence = 1,
            Timestamp = DateTimeOffset.UtcNow,
            Tags = images.Select(i => new TagBinding(Content.TagKey(i), i.Digest.ToString())).ToList(),
            Digests = images.SelectMany(i => i.NativeBlobs).Select(b => ContentKey.ForDigest(b.Digest)).Distinct().ToList(),
        };
        Assert.Equal("SUCCESS", await resolver.PostEventAsync(advertised));
    }
}
