using System.Net;

namespace Spegel.Resolver.Tests;

public class AppApiTokenTests
{
    private static readonly Dictionary<string, string?> WithToken = new() { ["APP_API_TOKEN"] = "s3cret-token" };

    [Theory]
    [InlineData(null, HttpStatusCode.Unauthorized)]
    [InlineData("wrong", HttpStatusCode.Unauthorized)]
    [InlineData("s3cret-token", HttpStatusCode.OK)]
    public async Task Lookup_AppApiTokenSet_OnlyTheSidecarsTokenGetsThrough(string? presented, HttpStatusCode expected)
    {
        await using var host = await ResolverTestHost.StartAsync(WithToken);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/peers?key=sha256:" + new string('a', 64));
        if (presented is not null)
        {
            request.Headers.Add("dapr-api-token", presented);
        }

        using var response = await host.Client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
    }

    [Fact]
    public async Task Subscription_AppApiTokenSet_RefusesDirectPosts()
    {
        await using var host = await ResolverTestHost.StartAsync(WithToken);
        using var content = new StringContent("{}", System.Text.Encoding.UTF8, "application/cloudevents+json");
        using var response = await host.Client.PostAsync(new Uri("/events/content", UriKind.Relative), content);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains(host.Logs.Lines, l => l.Message.Contains("dapr-api-token refused", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Health_AppApiTokenSet_StaysOpenForProbes()
    {
        await using var host = await ResolverTestHost.StartAsync(WithToken);
        using var response = await host.Client.GetAsync(new Uri("/healthz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Lookup_NoTokenConfigured_IsOpen()
    {
        await using var host = await ResolverTestHost.StartAsync();
        using var response = await host.Client.GetAsync(new Uri("/v1/peers?key=sha256:" + new string('a', 64), UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
