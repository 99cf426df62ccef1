using System.Collections.Concurrent;
using System.Text.Json;
using Serilog;
using Serilog.Configuration;
using Serilog.Core;
using Serilog.Events;
using Spegel.Hosting;

namespace Spegel.Observability.Tests.Support;

/// <summary>
/// The JSON lines one host wrote, formatted by the services' own <see cref="OperatorJsonFormatter"/>. Hosts find
/// their capture by a key given in configuration (<c>Serilog:WriteTo</c>), so parallel tests never share one.
/// </summary>
public sealed class CapturedLog : IDisposable
{
    private static readonly ConcurrentDictionary<string, CapturedLog> Live = new(StringComparer.Ordinal);

    private readonly ConcurrentQueue<string> lines = new();

    private CapturedLog(string key) => Key = key;

    public string Key { get; }

    public IReadOnlyList<string> Lines => [.. lines];

    /// <summary>Every line as parsed JSON.</summary>
    public IReadOnlyList<JsonElement> Entries => [.. Lines.Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    public static CapturedLog Create()
    {
        var log = new CapturedLog(Guid.NewGuid().ToString("N"));
        Live[log.Key] = log;
        return log;
    }

    internal static CapturedLog Find(string key) =>
        Live.TryGetValue(key, out var log) ? log : throw new InvalidOperationException($"no captured log {key}");

    /// <summary>Lines whose <c>msg</c> is <paramref name="message"/>.</summary>
    public IReadOnlyList<JsonElement> WithMessage(string message) =>
        [.. Entries.Where(e => e.TryGetProperty("msg", out var m) && m.GetString() == message)];

    internal void Add(string line) => lines.Enqueue(line.TrimEnd('\n'));

    public void Dispose() => Live.TryRemove(Key, out _);
}

/// <summary>The Serilog sink the test hosts name in configuration.</summary>
public static class TestSinkExtensions
{
    public static LoggerConfiguration TestCapture(this LoggerSinkConfiguration sinks, string key)
    {
        ArgumentNullException.ThrowIfNull(sinks);
        return sinks.Sink(new CaptureSink(CapturedLog.Find(key)));
    }

    private sealed class CaptureSink(CapturedLog log) : ILogEventSink
    {
        private readonly OperatorJsonFormatter formatter = new();

        public void Emit(LogEvent logEvent)
        {
            using var writer = new StringWriter();
            formatter.Format(logEvent, writer);
            log.Add(writer.ToString());
        }
    }
}
