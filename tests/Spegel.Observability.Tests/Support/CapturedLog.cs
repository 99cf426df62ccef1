using System.Collections.Concurrent;
using System.Text.Json;
using Serilog.Core;
using Serilog.Events;
using Spegel.Hosting;

namespace Spegel.Observability.Tests.Support;

/// <summary>
/// The JSON lines one host wrote, formatted by the services' own <see cref="OperatorJsonFormatter"/>. Each host
/// registers its own <see cref="CaptureSink"/>, so parallel tests never share one.
/// </summary>
public sealed class CapturedLog
{
    private readonly ConcurrentQueue<string> lines = new();

    public IReadOnlyList<string> Lines => [.. lines];

    /// <summary>Every line as parsed JSON.</summary>
    public IReadOnlyList<JsonElement> Entries => [.. Lines.Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    public static CapturedLog Create() => new();

    /// <summary>Lines whose <c>msg</c> is <paramref name="message"/>.</summary>
    public IReadOnlyList<JsonElement> WithMessage(string message) =>
        [.. Entries.Where(e => e.TryGetProperty("msg", out var m) && m.GetString() == message)];

    internal void Add(string line) => lines.Enqueue(line.TrimEnd('\n'));
}

/// <summary>
/// The Serilog sink a test host registers in its services: the services' logger takes every
/// <see cref="ILogEventSink"/> from DI besides the console, so the lines are exactly what operators would read.
/// </summary>
public sealed class CaptureSink(CapturedLog log) : ILogEventSink
{
    private readonly OperatorJsonFormatter formatter = new();

    public void Emit(LogEvent logEvent)
    {
        ArgumentNullException.ThrowIfNull(logEvent);
        using var writer = new StringWriter();
        formatter.Format(logEvent, writer);
        log.Add(writer.ToString());
    }
}
