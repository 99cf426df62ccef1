using System.Text.Json;
using Serilog;
using Serilog.Events;
using Spegel.Hosting;

namespace Spegel.Services.Tests;

public class OperatorJsonFormatterTests
{
    private const string Key = "sha256:5fcf7ef29eb9819794924a97aba79c77c8810292cad53a90cbda7be1bd892d33";

    private static string Render(Action<ILogger> log)
    {
        using var writer = new StringWriter();
        using (var logger = new LoggerConfiguration().MinimumLevel.Verbose().WriteTo.Sink(new WriterSink(writer)).CreateLogger())
        {
            log(logger);
        }

        return writer.ToString();
    }

    [Fact]
    public void Format_OciEvent_WritesTheLineOperatorsGrepFor()
    {
        var line = Render(l => l.Information("OCI event {key} {type}", Key, "CREATE"));

        Assert.Contains($"\"msg\":\"OCI event\",\"key\":\"{Key}\",\"type\":\"CREATE\"", line, StringComparison.Ordinal);
        Assert.EndsWith("}\n", line, StringComparison.Ordinal);
        Assert.Equal("info", JsonDocument.Parse(line).RootElement.GetProperty("level").GetString());
    }

    [Theory]
    [InlineData(LogEventLevel.Debug, "debug")]
    [InlineData(LogEventLevel.Warning, "warn")]
    [InlineData(LogEventLevel.Error, "error")]
    public void Format_Level_UsesShortLowerCaseName(LogEventLevel level, string expected)
    {
        var line = Render(l => l.Write(level, "x {n}", 1));
        Assert.Equal(expected, JsonDocument.Parse(line).RootElement.GetProperty("level").GetString());
    }

    [Fact]
    public void Format_ExceptionAndQuotes_StaysOneValidJsonLine()
    {
        var line = Render(l => l.Error(new InvalidOperationException("bad \"thing\"\nsecond line"), "request failed {path}", "/v2/\"x\""));

        Assert.Single(line.TrimEnd('\n').Split('\n'));
        var root = JsonDocument.Parse(line).RootElement;
        Assert.Equal("request failed", root.GetProperty("msg").GetString());
        Assert.Equal("/v2/\"x\"", root.GetProperty("path").GetString());
        Assert.Equal("bad \"thing\"\nsecond line", root.GetProperty("error").GetString());
        Assert.Contains("InvalidOperationException", root.GetProperty("exception").GetString(), StringComparison.Ordinal);
    }

    private sealed class WriterSink(TextWriter writer) : Serilog.Core.ILogEventSink
    {
        private readonly OperatorJsonFormatter formatter = new();

        public void Emit(LogEvent logEvent) => formatter.Format(logEvent, writer);
    }
}
