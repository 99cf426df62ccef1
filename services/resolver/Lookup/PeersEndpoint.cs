using Spegel.Core.Routing;

namespace Spegel.Resolver.Lookup;

/// <summary><c>GET /v1/peers</c>: 400 with a reason for an invalid key, otherwise the (possibly empty) answer.</summary>
public sealed class PeersEndpoint(PeerLookup lookup)
{
    public async Task<IResult> AnswerAsync(string? key, string? exclude, CancellationToken cancellationToken)
    {
        if (!LookupKey.TryParse(key, out var parsed, out var error))
        {
            return Results.Json(new ErrorResponse(error), ResolverJsonContext.Default.ErrorResponse, statusCode: StatusCodes.Status400BadRequest);
        }

        var answer = await lookup.LookupAsync(parsed, string.IsNullOrEmpty(exclude) ? null : exclude, cancellationToken);
        return Results.Json(answer, PeersJsonContext.Default.PeersResponse);
    }
}
