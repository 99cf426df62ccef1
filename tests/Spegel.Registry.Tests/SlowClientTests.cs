using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;
using Spegel.TestRig;

namespace Spegel.Registry.Tests;

/// <summary>
/// Clients that hold connections without finishing a request: a slow-loris trickling its headers is cut off after
/// <c>Spegel:RequestHeadersTimeout</c> with a log line, and neither it nor hundreds of idle connections stop the
/// registry from serving everyone else meanwhile.
/// </summary>
public sealed class SlowClientTests(ITestOutputHelper output)
{
    private const string HeadersTimeoutLine = "connection closed, request headers not received in time";

    [Fact]
    public async Task SlowLoris_OneHeaderByteEvery300Ms_IsCutOffAfterTheTimeout_WhileOthersAreServed()
    {
        var content = new TestContent();
        var logs = new CapturedLogs();
        await using var app = await RegistryApp.StartAsync(content.Store, logs, "--Spegel:RequestHeadersTimeout=00:00:02");

        var slow = TrickleHeadersAsync(app.Url, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(30));

        // Meanwhile, another client is served as usual.
        var served = 0;
        var slowest = TimeSpan.Zero;
        while (!slow.IsCompleted)
        {
            var clock = Stopwatch.StartNew();
            var (status, _, _) = await RawHttp.SendAsync(app.Url, "GET", $"/v2/library/app/blobs/{content.LayerDigest}");
            slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
            Assert.Equal(200, status);
            served++;
            await Task.Delay(100);
        }

        var (closedAfter, bytesSent, answer) = await slow;
        output.WriteLine($"slow-loris cut off after {closedAfter.TotalSeconds:0.0} s and {bytesSent} header bytes (answer: {answer}); {served} other requests served meanwhile, slowest {slowest.TotalMilliseconds:0} ms");
        Assert.InRange(closedAfter, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(10));
        Assert.True(served >= 5, $"only {served} requests served while the slow client was connected");
        Assert.StartsWith("HTTP/1.1 408", answer, StringComparison.Ordinal);
        var line = await WaitForLineAsync(logs, HeadersTimeoutLine);
        Assert.Equal(LogLevel.Warning, line.Level);
        output.WriteLine(line.Message);
        Assert.StartsWith(HeadersTimeoutLine + " 2 ", line.Message, StringComparison.Ordinal);
        Assert.EndsWith(" 1", line.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ManyIdleAndTricklingConnections_DoNotStopService_AndTricklersAreClosed()
    {
        var content = new TestContent();
        var logs = new CapturedLogs();
        await using var app = await RegistryApp.StartAsync(content.Store, logs, "--Spegel:RequestHeadersTimeout=00:00:02");
        var idle = new List<TcpClient>();
        try
        {
            // 300 connections that never send a byte, and 50 that sent half a request line and stopped.
            for (var i = 0; i < 350; i++)
            {
                var tcp = new TcpClient();
                await tcp.ConnectAsync(app.Url.Host, app.Url.Port);
                if (i >= 300)
                {
                    await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes("GET /v2/library/app/blo"));
                }

                idle.Add(tcp);
            }

            var clock = Stopwatch.StartNew();
            for (var i = 0; i < 20; i++)
            {
                var (status, _, _) = await RawHttp.SendAsync(app.Url, "GET", $"/v2/library/app/blobs/{content.LayerDigest}");
                Assert.Equal(200, status);
            }

            output.WriteLine($"20 requests with 350 idle connections open: {clock.Elapsed.TotalMilliseconds:0} ms");

            // The half-sent requests are closed by the headers timeout (the read sees the 408 then the end).
            var closed = await Task.WhenAll(idle.Skip(300).Select(t => ReadUntilClosedAsync(t, TimeSpan.FromSeconds(15))));
            Assert.All(closed, c => Assert.True(c, "a connection that stopped mid-request was not closed within 15 s"));
            output.WriteLine($"50 half-sent requests closed after {clock.Elapsed.TotalSeconds:0.0} s");

            // 50 closes, a handful of lines: a flood of connections is not a flood of log lines.
            await WaitForLineAsync(logs, HeadersTimeoutLine);
            var lines = logs.Lines.Where(l => l.Message.StartsWith(HeadersTimeoutLine, StringComparison.Ordinal)).Select(l => l.Message).ToList();
            output.WriteLine($"50 connections closed by the headers timeout: {string.Join(" | ", lines)}");
            Assert.InRange(lines.Count, 1, 10);
        }
        finally
        {
            idle.ForEach(t => t.Dispose());
        }
    }

    [Fact]
    public async Task SilentConnections_AreClosedAfterKestrelsKeepAliveTimeout()
    {
        // Kestrel times a connection that never sends a byte with KeepAliveTimeout (130 s by default), not with the
        // headers timeout; shortened here to watch it happen.
        await using var app = await RegistryApp.StartAsync(
            new TestContent().Store,
            null,
            b => b.Services.PostConfigure<KestrelServerOptions>(k => k.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(3)),
            "--Spegel:RequestHeadersTimeout=00:00:01");
        var silent = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 20; i++)
            {
                var tcp = new TcpClient();
                await tcp.ConnectAsync(app.Url.Host, app.Url.Port);
                silent.Add(tcp);
            }

            var clock = Stopwatch.StartNew();
            var closed = await Task.WhenAll(silent.Select(t => ReadUntilClosedAsync(t, TimeSpan.FromSeconds(20))));
            output.WriteLine($"20 silent connections closed after {clock.Elapsed.TotalSeconds:0.0} s");
            Assert.All(closed, Assert.True);
            Assert.True(clock.Elapsed > TimeSpan.FromSeconds(2), $"closed after {clock.Elapsed}: sooner than the keep-alive timeout");
        }
        finally
        {
            silent.ForEach(t => t.Dispose());
        }
    }

    [Fact]
    public async Task OversizedHeaders_Get431_AreLogged_AndServiceContinues()
    {
        var content = new TestContent();
        var logs = new CapturedLogs();
        await using var app = await RegistryApp.StartAsync(content.Store, logs);

        var (status, _, _) = await RawHttp.SendAsync(app.Url, "GET", "/v2/", "X-Big: " + new string('a', 32 * 1024) + "\r\n");

        Assert.Equal(431, status);
        var line = await WaitForLineAsync(logs, "connection closed for bad input");
        output.WriteLine(line.Message);
        Assert.Contains("request_headers", line.Message, StringComparison.Ordinal);
        var (tooLong, _, _) = await RawHttp.SendAsync(app.Url, "GET", "/v2/" + new string('a', 10_000));
        Assert.Equal(414, tooLong);
        var (after, _, _) = await RawHttp.SendAsync(app.Url, "GET", $"/v2/library/app/blobs/{content.LayerDigest}");
        Assert.Equal(200, after);
    }

    [Theory]
    [InlineData("00:00:00.500")]
    [InlineData("00:10:00")]
    public async Task Start_RequestHeadersTimeoutOutOfRange_FailsNamingTheOption(string value)
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var app = await RegistryApp.StartAsync(new TestContent().Store, $"--Spegel:RequestHeadersTimeout={value}");
        });

        Assert.Contains("Spegel:RequestHeadersTimeout must be between 00:00:01 and 00:05:00", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_Default_IsTenSeconds()
    {
        Assert.Equal(TimeSpan.FromSeconds(10), new RegistryOptions().RequestHeadersTimeout);
        Assert.Empty(new RegistryOptions().Validate());
    }

    /// <summary>Sends a request line, then one header byte per <paramref name="every"/>; returns when the server closes.</summary>
    private static async Task<(TimeSpan ClosedAfter, int BytesSent, string Answer)> TrickleHeadersAsync(Uri server, TimeSpan every, TimeSpan giveUp)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        var stream = tcp.GetStream();
        var clock = Stopwatch.StartNew();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /v2/ HTTP/1.1\r\nHost: {server.Authority}\r\n"));
        var answer = new StringBuilder();
        var buffer = new byte[4096];
        var read = stream.ReadAsync(buffer).AsTask();
        var sent = 0;
        var header = Encoding.ASCII.GetBytes("X-Slow: " + new string('z', 10_000));
        while (clock.Elapsed < giveUp)
        {
            if (await Task.WhenAny(read, Task.Delay(every)) == read)
            {
                var n = await SafeAsync(read);
                if (n <= 0)
                {
                    return (clock.Elapsed, sent, answer.ToString());
                }

                answer.Append(Encoding.ASCII.GetString(buffer, 0, n));
                read = stream.ReadAsync(buffer).AsTask();
                continue;
            }

            try
            {
                await stream.WriteAsync(header.AsMemory(sent++ % header.Length, 1));
            }
            catch (IOException)
            {
                return (clock.Elapsed, sent, answer.ToString());
            }
        }

        return (clock.Elapsed, sent, answer.ToString());
    }

    private static async Task<int> SafeAsync(Task<int> read)
    {
        try
        {
            return await read;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static async Task<bool> ReadUntilClosedAsync(TcpClient tcp, TimeSpan within)
    {
        using var cts = new CancellationTokenSource(within);
        var buffer = new byte[1024];
        try
        {
            while (await tcp.GetStream().ReadAsync(buffer, cts.Token) > 0)
            {
            }

            return true;
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task<(string Category, LogLevel Level, string Message)> WaitForLineAsync(CapturedLogs logs, string prefix)
    {
        for (var i = 0; i < 100; i++)
        {
            if (logs.Lines.FirstOrDefault(l => l.Message.StartsWith(prefix, StringComparison.Ordinal)) is { Message: not null } line)
            {
                return line;
            }

            await Task.Delay(50);
        }

        Assert.Fail($"no '{prefix}' line; lines: {string.Join(" | ", logs.Lines.Select(l => l.Message))}");
        return default;
    }
}
