using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Options;
using Spegel.Core.Routing;
using Spegel.Registry.Observability;

namespace Spegel.Registry.Mirror;

/// <summary>One peer's answer that was accepted, with the token source that must live as long as its body is read.</summary>
public sealed class PeerResponse(Peer peer, HttpResponseMessage response, CancellationTokenSource lifetime, byte[]? body) : IDisposable
{
    public Peer Peer { get; } = peer;

    public HttpResponseMessage Response { get; } = response;

    /// <summary>The whole body when the acceptance check had to read it (manifests); null for streamed blobs.</summary>
    public byte[]? Body { get; } = body;

    public void Dispose()
    {
        Response.Dispose();
        lifetime.Dispose();
    }
}

/// <summary>What happened with one peer, for the 404's detail and the log.</summary>
public sealed record PeerAttempt(string Node, string Outcome, double Milliseconds);

/// <summary>What an acceptance check decided: keep the response (and maybe its read body) or try the next peer.</summary>
public readonly record struct Acceptance(bool Accepted, string Outcome, byte[]? Body = null)
{
    public static Acceptance Yes(byte[]? body = null) => new(true, "ok", body);

    public static Acceptance No(string outcome) => new(false, outcome);
}

/// <summary>
/// Sends one request to peers in order, hedged: when the first has not answered within the learned hedge delay,
/// the next starts too; a failed attempt starts the next at once. The first accepted answer wins and every other
/// attempt is cancelled and disposed. Written out rather than with Polly's hedging because the winner's body is
/// streamed long after the pipeline would have returned, each attempt targets a different peer, and losers that
/// answer late must still be disposed; the logic is the short loop below.
/// </summary>
public sealed class HedgedPeerClient(IHttpClientFactory clients, PeerHealth health, IOptions<MirrorOptions> options, TimeProvider time, RegistryMetrics metrics)
{
    public const string ClientName = "peers";

    public async Task<(PeerResponse? Winner, IReadOnlyList<PeerAttempt> Attempts)> SendAsync(
        IReadOnlyList<Peer> peers,
        Func<Peer, HttpRequestMessage> build,
        Func<Peer, HttpResponseMessage, CancellationToken, Task<Acceptance>> accept,
        TimeSpan budget,
        CancellationToken cancellationToken)
    {
        var ordered = health.Order(peers).Take(options.Value.MirrorResolveRetries).ToList();
        var attempts = new List<PeerAttempt>();
        var running = new List<(Task<PeerResponse?> Task, CancellationTokenSource Cts, Peer Peer)>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(budget);
        var deadlineTask = Task.Delay(Timeout.Infinite, deadline.Token);
        var started = 0;

        void StartNext()
        {
            var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var peer = ordered[started++];
            running.Add((AttemptAsync(peer, build, accept, attempts, cts), cts, peer));
        }

        try
        {
            if (ordered.Count == 0)
            {
                return (null, []);
            }

            StartNext();
            while (running.Count > 0)
            {
                var hedge = started < ordered.Count ? Task.Delay(health.HedgeDelay, time, deadline.Token) : deadlineTask;
                var done = await Task.WhenAny(running.Select(r => (Task)r.Task).Append(hedge).Append(deadlineTask));
                if (done == deadlineTask || deadline.IsCancellationRequested)
                {
                    // Peers still out when the budget ran out did not answer in time: try them last for a while.
                    metrics.PeerFailed(PeerFailureKind.Timeout, cancellationToken.IsCancellationRequested ? 0 : running.Count);
                    if (!cancellationToken.IsCancellationRequested)
                    {
                        running.ForEach(r => health.RecordFailure(r.Peer));
                    }

                    break;
                }

                if (done == hedge)
                {
                    StartNext();
                    continue;
                }

                var finished = running.First(r => r.Task == done);
                running.Remove(finished);
                var winner = await finished.Task;
                if (winner is not null)
                {
                    // A peer asked before the winner and still silent lost to a later one: it is stalled or slow,
                    // so it goes last for a while instead of costing a hedge delay on every request.
                    var winnerOrder = ordered.IndexOf(winner.Peer);
                    foreach (var loser in running.Where(r => ordered.IndexOf(r.Peer) < winnerOrder))
                    {
                        health.RecordFailure(loser.Peer);
                    }

                    return (winner, Snapshot(attempts));
                }

                finished.Cts.Dispose();
                if (started < ordered.Count)
                {
                    StartNext();
                }
            }

            return (null, Snapshot(attempts));
        }
        finally
        {
            // Losers: cancel, and dispose whatever they still produce.
            foreach (var (task, cts, _) in running)
            {
                await cts.CancelAsync();
                _ = task.ContinueWith(
                    static (t, state) =>
                    {
                        if (t.IsCompletedSuccessfully)
                        {
                            t.Result?.Dispose();
                        }

                        ((CancellationTokenSource)state!).Dispose();
                    },
                    cts,
                    CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously,
                    TaskScheduler.Default);
            }

            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private async Task<PeerResponse?> AttemptAsync(
        Peer peer,
        Func<Peer, HttpRequestMessage> build,
        Func<Peer, HttpResponseMessage, CancellationToken, Task<Acceptance>> accept,
        List<PeerAttempt> attempts,
        CancellationTokenSource cts)
    {
        var started = Stopwatch.GetTimestamp();
        string outcome;
        HttpResponseMessage? response = null;
        try
        {
            using var request = build(peer);
            response = await clients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            health.RecordLatency(Stopwatch.GetElapsedTime(started));
            var verdict = await accept(peer, response, cts.Token);
            if (verdict.Accepted)
            {
                Record(attempts, peer, "ok", started);
                return new PeerResponse(peer, response, cts, verdict.Body);
            }

            outcome = verdict.Outcome;
            if (response.StatusCode != HttpStatusCode.NotFound)
            {
                health.RecordFailure(peer);
                if (!response.IsSuccessStatusCode)
                {
                    metrics.PeerFailed(PeerFailureKind.Status);
                }
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            outcome = "cancelled";
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            health.RecordFailure(peer);
            metrics.PeerFailed(RegistryMetrics.Classify(ex));
            outcome = $"failed: {ex.Message}";
        }

        response?.Dispose();
        Record(attempts, peer, outcome, started);
        return null;
    }

    private static List<PeerAttempt> Snapshot(List<PeerAttempt> attempts)
    {
        lock (attempts)
        {
            return [.. attempts];
        }
    }

    private static void Record(List<PeerAttempt> attempts, Peer peer, string outcome, long started)
    {
        lock (attempts)
        {
            attempts.Add(new PeerAttempt(peer.Node, outcome, Math.Round(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 3)));
        }
    }
}
