using Spegel.Core.Routing;
using Spegel.Resolver.Observability;

namespace Spegel.Resolver.Lookup;

/// <summary><c>GET /v1/peers</c>: 400 with a reason for an invalid key, otherwise the (possibly empty) answer.</summary>
public sealed class PeersEndpoint(PeerLookup lookup, ResolverMetrics metrics)
{
    public async Task<IResult> AnswerAsync(string? key, string? exclude, CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        if (!LookupKey.TryParse(key, out var parsed, out var error))
        {
            metrics.Lookup(System.Diagnostics.Stopwatch.GetElapsedTime(started), "invalid", "invalid");
            return Results.Json(new ErrorResponse(error), ResolverJsonContext.Default.ErrorResponse, statusCode: StatusCodes.Status400BadRequest);
        }

        var answer = await lookup.LookupAsync(parsed, string.IsNullOrEmpty(exclude) ? null : exclude, cancellationToken);
        metrics.Lookup(System.Diagnostics.Stopwatch.GetElapsedTime(started), parsed.IsTag ? "tag" : "digest", answer.Peers.Count > 0 ? "found" : "empty");
        return Results.Json(answer, PeersJsonContext.Default.PeersResponse);
    }
}
