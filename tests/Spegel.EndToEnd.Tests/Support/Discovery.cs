using System.Diagnostics;
using Spegel.EndToEnd.Tests.Cluster;
using Spegel.TestRig;

namespace Spegel.EndToEnd.Tests.Support;

/// <summary>Waiting for the resolver's answers to change, timed.</summary>
internal static class Discovery
{
    /// <summary>
    /// Polls every key until the resolver lists <paramref name="node"/> for all of them (or, with
    /// <paramref name="listed"/> false, for none of them); returns how long that took.
    /// </summary>
    public static async Task<TimeSpan> WaitAsync(ResolverApi resolver, string node, IEnumerable<string> keys, bool listed, TimeSpan timeout, Func<string>? describe = null)
    {
        var all = keys.ToList();
        var clock = Stopwatch.StartNew();
        var pending = all;
        try
        {
            await Poll.WaitUntilAsync(
                async ct =>
                {
                    var still = new List<string>();
                    foreach (var key in pending)
                    {
                        if ((await resolver.NodesAsync(key, ct)).Contains(node) != listed)
                        {
                            still.Add(key);
                        }
                    }

                    pending = still;
                    return pending.Count == 0;
                },
                timeout,
                $"{node} {(listed ? "listed" : "no longer listed")} for {all.Count} keys",
                TimeSpan.FromMilliseconds(10));
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message} Still pending: {string.Join(", ", pending)}\n{describe?.Invoke()}", ex);
        }

        return clock.Elapsed;
    }
}
