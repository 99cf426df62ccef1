using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Serilog;
using Serilog.Events;

namespace Spegel.Hosting;

/// <summary>What every Spegel service has: JSON logs for operators, validated options, health endpoints, clean shutdown.</summary>
public static class SpegelDefaultsExtensions
{
    /// <summary>Health checks tagged with this run only on <c>/readyz</c>; <c>/healthz</c> answers while the process lives.</summary>
    public const string ReadyTag = "ready";

    public static WebApplicationBuilder AddSpegelDefaults(this WebApplicationBuilder builder, string serviceName)
    {
        ArgumentNullException.ThrowIfNull(builder);

        // preserveStaticLogger: each host writes through its own logger, not Serilog's static one, so hosts sharing
        // a process (tests) never write into each other's sinks.
        builder.Services.AddSerilog((services, logger) => logger
            .MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
            .MinimumLevel.Override("System.Net.Http.HttpClient", LogEventLevel.Warning)
            .ApplyConfiguredLevels(builder.Configuration)
            .ReadFrom.Services(services)
            .Enrich.FromLogContext()
            .Enrich.WithProperty("service", serviceName)
            .WriteTo.Console(new OperatorJsonFormatter()), preserveStaticLogger: true);

        builder.Services.AddValidatedOptions<SpegelOptions>(SpegelOptions.SectionName);
        builder.Services.AddValidatedOptions<NodeOptions>(NodeOptions.SectionName);
        builder.Services.AddOptions<LogLevelOptions>().Configure<IConfiguration>((levels, configuration) => levels.Configuration = configuration).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<LogLevelOptions>, AllErrorsValidator<LogLevelOptions>>();
        builder.Services.AddHealthChecks();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.AddSpegelMetrics(serviceName);
        builder.Services.AddDaprMetadataRegistration(serviceName);
        builder.Services.AddHostedService(sp => new LifetimeLogger(
            serviceName,
            sp.GetRequiredService<ILogger<LifetimeLogger>>(),
            sp.GetRequiredService<IHostApplicationLifetime>(),
            sp.GetRequiredService<IOptions<SpegelOptions>>(),
            sp.GetRequiredService<IOptions<NodeOptions>>(),
            sp.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()));
        return builder;
    }

    /// <summary>Binds <typeparamref name="TOptions"/> to a configuration section and validates it at start, reporting every error.</summary>
    /// <remarks>
    /// Bound by the reflection binder, also in the registry's Native AOT build: the annotation keeps every options
    /// class's constructor and properties, and options hold only strings, numbers, booleans, enums, TimeSpans and
    /// string arrays, which the binder creates without generating code. tests/Spegel.Aot.Tests starts the AOT binary
    /// with every kind of value and with bad ones.
    /// </remarks>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "TOptions is annotated; see remarks.")]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Options hold no generic collections of value types; see remarks.")]
    public static OptionsBuilder<TOptions> AddValidatedOptions<[System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicParameterlessConstructor | System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicProperties)] TOptions>(this IServiceCollection services, string sectionName)
        where TOptions : class, IValidatableOptions
    {
        services.AddSingleton<IValidateOptions<TOptions>, AllErrorsValidator<TOptions>>();
        return services.AddOptions<TOptions>().BindConfiguration(sectionName).ValidateOnStart();
    }

    /// <summary>Options for reaching the resolver; with <paramref name="requireUrlInStandalone"/> the URL must be set when the transport is Standalone.</summary>
    public static IServiceCollection AddResolverClientOptions(this IServiceCollection services, bool requireUrlInStandalone)
    {
        services.AddValidatedOptions<ResolverClientOptions>(ResolverClientOptions.SectionName)
            .Configure<IOptions<SpegelOptions>>((resolver, spegel) => resolver.UrlRequired = requireUrlInStandalone && spegel.Value.TransportKind == Transport.Standalone);
        return services;
    }

    /// <summary>Maps <c>/healthz</c> (alive) and <c>/readyz</c> (dependencies reachable).</summary>
    public static WebApplication MapSpegelHealth(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = check => check.Tags.Contains(ReadyTag) });
        return app;
    }

    /// <summary>
    /// Runs the service until SIGTERM/SIGINT. Invalid configuration is one clear log line per error and exit code 2,
    /// not a stack trace.
    /// </summary>
    public static async Task<int> RunSpegelAsync(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Spegel.Hosting");
        try
        {
            // Validate before the host starts, while the logger still works, so every error is one readable line.
            app.Services.GetRequiredService<IStartupValidator>().Validate();
        }
        catch (Exception ex) when (ValidationFailures(ex) is { } failures)
        {
            // One options class failing throws its OptionsValidationException; several throw them together in an
            // AggregateException. Either way: every failure, one line each.
            foreach (var failure in failures)
            {
                HostingLog.InvalidConfiguration(logger, failure);
            }

            return 2;
        }
        catch (InvalidOperationException ex) when (ex.InnerException is FormatException)
        {
            HostingLog.InvalidConfiguration(logger, ex.Message);
            return 2;
        }

        try
        {
            await app.RunAsync();
            return 0;
        }
        catch (IOException ex) when (ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
        {
            HostingLog.CannotListen(logger, ex.Message);
            return 3;
        }
    }

    private static IReadOnlyList<string>? ValidationFailures(Exception ex) => ex switch
    {
        OptionsValidationException single => [.. single.Failures],
        AggregateException many when many.InnerExceptions.All(e => e is OptionsValidationException) =>
            [.. many.InnerExceptions.Cast<OptionsValidationException>().SelectMany(e => e.Failures)],
        _ => null,
    };

    internal static string Version =>
        typeof(SpegelDefaultsExtensions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
}
