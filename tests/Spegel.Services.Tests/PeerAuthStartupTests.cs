using System.Net;
using System.Text.Json;
using Spegel.TestRig;

namespace Spegel.Services.Tests;

/// <summary>
/// The registry process as operators start it: peer authentication is on wherever peers can reach it, and a missing
/// token is one clear start-up error (exit code 2), not an open port.
/// </summary>
public class PeerAuthStartupTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("--Spegel:Transport=Dapr", "Spegel:Transport is Dapr")]
    [InlineData("--urls=http://0.0.0.0:{port}", "http://0.0.0.0:")]
    [InlineData("--urls=http://+:{port}", "http://+:")]
    public async Task Start_ReachableWithoutToken_OneInvalidConfigurationLineAndExitTwo(string argument, string reason)
    {
        await using var process = SpegelServiceProcess.Start("Spegel.Registry", "--Spegel:Node:Name=node-a", argument);
        Assert.Equal(2, await process.WaitForExitAsync(Timeout));

        var error = Assert.Single(Errors(process));
        Assert.Contains("Spegel:PeerTokenFile", error, StringComparison.Ordinal);
        Assert.Contains(reason, error, StringComparison.Ordinal);
        Assert.Contains("Spegel:PeerAuthentication=None", error, StringComparison.Ordinal);
        Assert.DoesNotContain(process.Lines, l => l.Contains("   at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Start_UnknownPeerAuthentication_NamesTheKeyAndExitsTwo()
    {
        await using var process = SpegelServiceProcess.Start("Spegel.Registry", "--Spegel:PeerAuthentication=Maybe");
        Assert.Equal(2, await process.WaitForExitAsync(Timeout));

        var error = Assert.Single(Errors(process));
        Assert.Equal("Spegel:PeerAuthentication must be Token or None, not 'Maybe'.", error);
    }

    [Fact]
    public async Task Start_NoneBeyondLoopback_StartsWarnsOnceAndServesPeersWithoutToken()
    {
        await using var process = SpegelServiceProcess.Start("Spegel.Registry", "--Spegel:Node:Name=node-a", "--urls=http://0.0.0.0:{port}", "--Spegel:PeerAuthentication=None");
        await process.WaitForHealthyAsync(Timeout);

        var warning = Assert.Single(Logs(process), l => l.GetProperty("msg").GetString() == "peer authentication off");
        Assert.Equal("warn", warning.GetProperty("level").GetString());
        Assert.Contains("readable by anyone who can reach", warning.GetProperty("risk").GetString(), StringComparison.Ordinal);
        Assert.Contains("0.0.0.0", warning.GetProperty("reachable").GetString(), StringComparison.Ordinal);

        // A peer-only request without a token is not refused (no containerd here: 503, never 401).
        Assert.NotEqual(HttpStatusCode.Unauthorized, await PeerRequestAsync(process, token: null));
    }

    [Fact]
    public async Task Start_TokenFileBeyondLoopback_StartsAndRefusesPeersWithoutIt()
    {
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(file, "0123456789abcdef0123456789abcdef\n");
            await using var process = SpegelServiceProcess.Start("Spegel.Registry", "--Spegel:Node:Name=node-a", "--urls=http://0.0.0.0:{port}", $"--Spegel:PeerTokenFile={file}");
            await process.WaitForHealthyAsync(Timeout);

            Assert.Equal(HttpStatusCode.Unauthorized, await PeerRequestAsync(process, token: null));
            Assert.Equal(HttpStatusCode.Unauthorized, await PeerRequestAsync(process, token: "0123456789abcdef0123456789abcdeX"));
            Assert.NotEqual(HttpStatusCode.Unauthorized, await PeerRequestAsync(process, token: "0123456789abcdef0123456789abcdef"));
            Assert.Contains(Logs(process), l => l.GetProperty("msg").GetString() == "peer request without a valid peer token refused");
            Assert.DoesNotContain(Logs(process), l => l.GetProperty("msg").GetString() == "peer authentication off");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Start_StandaloneOnLoopbackWithoutToken_StartsWithoutWarning()
    {
        await using var process = SpegelServiceProcess.Start("Spegel.Registry", "--Spegel:Node:Name=node-a");
        await process.WaitForHealthyAsync(Timeout);

        Assert.Empty(Errors(process));
        Assert.DoesNotContain(Logs(process), l => l.GetProperty("msg").GetString() == "peer authentication off");
        Assert.NotEqual(HttpStatusCode.Unauthorized, await PeerRequestAsync(process, token: null));
    }

    private static async Task<HttpStatusCode> PeerRequestAsync(SpegelServiceProcess process, string? token)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(process.BaseUri, "/v2/library/app/blobs/sha256:" + new string('a', 64)));
        request.Headers.Add("X-Spegel-Mirrored", "true");
        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    private static List<JsonElement> Logs(SpegelServiceProcess process) =>
        process.Lines.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    private static List<string?> Errors(SpegelServiceProcess process) =>
        Logs(process).Where(l => l.GetProperty("msg").GetString() == "invalid configuration").Select(l => l.GetProperty("error").GetString()).ToList();
}
