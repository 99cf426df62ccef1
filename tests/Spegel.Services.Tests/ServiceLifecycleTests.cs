using System.Net;
using System.Text.Json;
using Spegel.TestRig;

namespace Spegel.Services.Tests;

public class ServiceLifecycleTests
{
    private const int SigTerm = 15;

    [Theory]
    [InlineData("Spegel.Registry", "registry")]
    [InlineData("Spegel.Indexer", "indexer")]
    [InlineData("Spegel.Resolver", "resolver")]
    public async Task Start_ThenSigterm_AnswersHealthzLogsJsonAndExitsZero(string project, string service)
    {
        // The indexer needs a resolver URL in Standalone; nothing listens there, which it survives.
        await using var process = SpegelServiceProcess.Start(project, "--Spegel:Node:Name=node-a", "--Spegel:Resolver:Url=http://127.0.0.1:9");
        await process.WaitForHealthyAsync(TimeSpan.FromSeconds(30));

        using var client = new HttpClient();
        using var health = await client.GetAsync(new Uri(process.Url + "/healthz"));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        process.Signal(SigTerm);
        Assert.Equal(0, await process.WaitForExitAsync(TimeSpan.FromSeconds(20)));

        var logs = process.Lines.Select(line => JsonDocument.Parse(line).RootElement).ToList();
        var started = Assert.Single(logs, l => l.GetProperty("msg").GetString() == "service started");
        Assert.Equal(service, started.GetProperty("name").GetString());
        Assert.Equal("node-a", started.GetProperty("node").GetString());
        Assert.Equal(process.Url, started.GetProperty("urls").GetString());
        Assert.Single(logs, l => l.GetProperty("msg").GetString() == "service stopped");
    }

    [Fact]
    public async Task Start_InvalidOptions_ReportsEveryErrorAndExitsTwo()
    {
        await using var process = SpegelServiceProcess.Start(
            "Spegel.Resolver", "--Spegel:Node:Name=bad name!", "--Spegel:Node:Address=ftp://x", "--Spegel:Transport=Dapr");
        Assert.Equal(2, await process.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        var errors = process.Lines
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(l => l.GetProperty("msg").GetString() == "invalid configuration")
            .Select(l => l.GetProperty("error").GetString())
            .ToList();
        Assert.Contains(errors, e => e!.Contains("Spegel:Node:Name", StringComparison.Ordinal));
        Assert.Contains(errors, e => e!.Contains("Spegel:Node:Address", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Start_BadLogLevels_AreInvalidConfigurationLinesNamingTheKey()
    {
        // With an error in another options class too: several classes failing arrive together, and each is a line.
        await using var process = SpegelServiceProcess.Start(
            "Spegel.Registry", "--Serilog:MinimumLevel:Default=Loud", "--Serilog:MinimumLevel:Override:Spegel.Registry.RequestLogMiddleware=quiet", "--Spegel:MirrorResolveRetries=99",
            "--Spegel:RegistryFilters:0=(");
        Assert.Equal(2, await process.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        var errors = process.Lines
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(l => l.GetProperty("msg").GetString() == "invalid configuration")
            .Select(l => l.GetProperty("error").GetString()!)
            .ToList();
        Assert.Contains(errors, e => e.StartsWith("Serilog:MinimumLevel:Default must be one of", StringComparison.Ordinal) && e.Contains("'Loud'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Serilog:MinimumLevel:Override:Spegel.Registry.RequestLogMiddleware must be one of", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Spegel:MirrorResolveRetries must be between 1 and 20", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Spegel:RegistryFilters entry '('", StringComparison.Ordinal));
        Assert.DoesNotContain(process.Lines, l => l.Contains("Unhandled exception", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Start_WarningLevelOverride_DropsOnlyThatCategorysLines()
    {
        // The documented way to silence per-request lines: the service still logs its start, not its requests.
        await using var process = SpegelServiceProcess.Start(
            "Spegel.Registry", "--Spegel:Node:Name=node-a", "--Serilog:MinimumLevel:Override:Spegel.Registry.RequestLogMiddleware=Warning");
        await process.WaitForHealthyAsync(TimeSpan.FromSeconds(30));
        using var http = new HttpClient { BaseAddress = process.BaseUri };
        (await http.GetAsync(new Uri("/v2/", UriKind.Relative))).EnsureSuccessStatusCode();
        await process.StopAsync();

        Assert.Contains(process.Lines, l => l.Contains("\"msg\":\"service started\"", StringComparison.Ordinal));
        Assert.DoesNotContain(process.Lines, l => l.Contains("\"msg\":\"request\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Start_UnknownTransport_FailsWithoutStackTraceSpam()
    {
        await using var process = SpegelServiceProcess.Start("Spegel.Indexer", "--Spegel:Transport=Carrier-Pigeon");
        Assert.NotEqual(0, await process.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(process.Lines, l => l.Contains("Spegel:Transport", StringComparison.Ordinal));
    }
}
