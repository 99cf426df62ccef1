using System.Diagnostics;

namespace Spegel.TestRig;

/// <summary>Polling with a deadline: the rig's replacement for sleeps.</summary>
public static class Poll
{
    private static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Evaluates <paramref name="condition"/> until it is true; throws <see cref="TimeoutException"/> naming <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static async Task WaitUntilAsync(
        Func<CancellationToken, Task<bool>> condition,
        TimeSpan timeout,
        string what = "condition",
        TimeSpan? interval = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var clock = Stopwatch.StartNew();
        Exception? last = null;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                if (await condition(ct).ConfigureAwait(false))
                {
                    return;
                }

                last = null;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                last = ex;
            }

            if (clock.Elapsed >= timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for {what}." + (last is null ? string.Empty : $" Last error: {last.Message}"), last);
            }

            await Task.Delay(interval ?? DefaultInterval, ct).ConfigureAwait(false);
        }
    }

    public static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what = "condition", TimeSpan? interval = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return WaitUntilAsync(_ => Task.FromResult(condition()), timeout, what, interval, ct);
    }
}
