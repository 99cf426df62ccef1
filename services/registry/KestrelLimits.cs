using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Spegel.Registry;

/// <summary>
/// Kestrel's limits against clients that hold connections without finishing a request (slow-loris): request headers
/// must arrive within <see cref="RegistryOptions.RequestHeadersTimeout"/>, and a connection Kestrel closes for bad
/// input gets a log line of ours (Kestrel's own is at Debug).
/// </summary>
public static class KestrelLimitsExtensions
{
    public static WebApplicationBuilder AddRegistryKestrelLimits(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);

        // MaxConcurrentConnections stays unlimited on purpose: a cap would let whoever opens that many idle
        // connections lock containerd out. Each connection is bounded in time instead: this timeout once a request's
        // first byte arrived, Kestrel's KeepAliveTimeout (130 s) while nothing arrives (new or between requests).
        // Read from configuration, not from the validated RegistryOptions: Kestrel's options are built while the host
        // is, before start-up validation reports bad values as 'invalid configuration' lines; touching
        // IOptions<RegistryOptions>.Value here turned any bad registry option into an unhandled exception. A value
        // that does not parse keeps the default here and is reported by that validation.
        var configured = builder.Configuration[RegistryOptions.SectionName + ":" + nameof(RegistryOptions.RequestHeadersTimeout)];
        var headersTimeout = TimeSpan.TryParse(configured, System.Globalization.CultureInfo.InvariantCulture, out var parsed) ? parsed : new RegistryOptions().RequestHeadersTimeout;
        builder.Services.AddOptions<KestrelServerOptions>()
            .Configure(kestrel => kestrel.Limits.RequestHeadersTimeout = headersTimeout);
        builder.Services.AddHostedService<KestrelConnectionLog>();
        return builder;
    }
}

/// <summary>
/// Logs connections Kestrel ended because of what the client sent (or did not send in time). Kestrel has no event
/// for this, but it records the reason on its <c>kestrel.connection.duration</c> measurement as <c>error.type</c>;
/// listening to this host's Kestrel meter is the one public hook. Kestrel keeps the client's address out of those
/// tags, so the line cannot name it; <c>connections</c> says how many closes the line stands for.
/// </summary>
internal sealed partial class KestrelConnectionLog(IMeterFactory meters, IOptions<RegistryOptions> options, TimeProvider time, ILogger<KestrelConnectionLog> logger)
    : IHostedService, IDisposable
{
    private const string KestrelMeter = "Microsoft.AspNetCore.Server.Kestrel";
    private const string ConnectionDuration = "kestrel.connection.duration";

    // Reasons that say the client misbehaved; resets, shutdowns and the like are not worth a line each.
    private static readonly HashSet<string> BadInput = new(StringComparer.Ordinal)
    {
        "request_headers_timeout", "min_request_body_data_rate", "min_response_data_rate", "max_request_headers_total_size_exceeded",
        "max_request_header_count_exceeded", "invalid_request_line", "invalid_request_headers", "invalid_http_version",
        "max_request_body_size_exceeded", "max_concurrent_connections_exceeded", "invalid_body_reader_state", "flow_control_queue_size_exceeded",
    };

    private readonly MeterListener listener = new();
    private readonly double timeoutSeconds = options.Value.RequestHeadersTimeout.TotalSeconds;

    // A flood of idle connections must not become a flood of lines: at most one line a second per kind, counting the rest.
    private readonly LineBudget headersTimeouts = new(time);
    private readonly LineBudget otherReasons = new(time);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            // Only this host's Kestrel: tests run several hosts in one process.
            if (instrument.Meter.Name == KestrelMeter && instrument.Name == ConnectionDuration && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>(OnConnectionEnded);
        listener.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        listener.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => listener.Dispose();

    private void OnConnectionEnded(Instrument instrument, double seconds, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        // Kestrel leaves the client's address out of its metric tags (cardinality), so the line cannot name it.
        string? reason = null;
        foreach (var tag in tags)
        {
            if (tag.Key == "error.type")
            {
                reason = tag.Value as string;
            }
        }

        if (reason is null || !BadInput.Contains(reason))
        {
            return;
        }

        var durationMs = Math.Round(seconds * 1000, 1);
        if (reason == "request_headers_timeout")
        {
            if (headersTimeouts.TryTake(out var connections))
            {
                LogHeadersTimeout(timeoutSeconds, durationMs, connections);
            }
        }
        else if (otherReasons.TryTake(out var connections))
        {
            LogBadConnection(reason, durationMs, connections);
        }
    }

    /// <summary>Allows one line per second; <c>connections</c> is how many closes that line stands for.</summary>
    private sealed class LineBudget(TimeProvider time)
    {
        private long last;
        private int pending;

        public bool TryTake(out int connections)
        {
            Interlocked.Increment(ref pending);
            var now = time.GetTimestamp();
            var previous = Interlocked.Read(ref last);
            if ((previous != 0 && time.GetElapsedTime(previous, now) < TimeSpan.FromSeconds(1)) || Interlocked.CompareExchange(ref last, now, previous) != previous)
            {
                connections = 0;
                return false;
            }

            connections = Interlocked.Exchange(ref pending, 0);
            return true;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "connection closed, request headers not received in time {timeoutSeconds} {durationMs} {connections}")]
    private partial void LogHeadersTimeout(double timeoutSeconds, double durationMs, int connections);

    [LoggerMessage(Level = LogLevel.Information, Message = "connection closed for bad input {reason} {durationMs} {connections}")]
    private partial void LogBadConnection(string reason, double durationMs, int connections);
}
