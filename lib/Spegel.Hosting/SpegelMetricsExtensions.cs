using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Spegel.Hosting;

/// <summary>
/// Prometheus metrics on every service: the service's own <c>Meter</c> (one per service, named
/// <c>Spegel.Registry</c>, <c>Spegel.Indexer</c>, <c>Spegel.Resolver</c>, created through <c>IMeterFactory</c> so
/// that two hosts in one process keep their own instruments), ASP.NET Core's request metrics and the runtime's,
/// exported by OpenTelemetry on <c>GET /metrics</c> in the Prometheus text format.
/// </summary>
public static class SpegelMetricsExtensions
{
    public const string MetricsPath = "/metrics";

    /// <summary>The service's meter: <c>Spegel.Registry</c> for <c>registry</c>, and so on.</summary>
    public static string MeterNameFor(string serviceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        return "Spegel." + char.ToUpperInvariant(serviceName[0]) + serviceName[1..];
    }

    /// <summary>
    /// Adds the OpenTelemetry meter provider with the Prometheus exporter, listening to the service's meter
    /// (<see cref="MeterNameFor"/>). Called by <c>AddSpegelDefaults</c>, before the service's own hosted services are
    /// registered, so the provider listens before they start measuring.
    /// </summary>
    public static WebApplicationBuilder AddSpegelMetrics(this WebApplicationBuilder builder, string serviceName)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var meterName = MeterNameFor(serviceName);
        // The service's meter is enabled for meters of this host only (MeterScope.Local: created by this host's
        // IMeterFactory), not by name process-wide, so two hosts in one process (tests) never mix their counts.
        builder.Metrics.EnableMetrics(meterName, scopes: MeterScope.Local);
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName, serviceVersion: SpegelDefaultsExtensions.Version, autoGenerateServiceInstanceId: false))
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                // Every scrape collects afresh: a counter read right after an event shows it (no 300 ms cache).
                .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        builder.Services.AddHostedService<MetricsPrimer>();
        return builder;
    }

    /// <summary>Maps <c>GET /metrics</c> (Prometheus text format).</summary>
    public static WebApplication MapSpegelMetrics(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapPrometheusScrapingEndpoint(MetricsPath);
        return app;
    }
}
