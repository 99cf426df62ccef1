using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Spegel.Hosting;
using Spegel.TestRig;

namespace Spegel.Resolver.Tests;

/// <summary>The resolver as Program.cs builds it, on Kestrel at a free loopback port, with its log lines captured.</summary>
public sealed class ResolverTestHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ResolverTestHost(WebApplication app, CapturedLogs logs, Uri address)
    {
        _app = app;
        Logs = logs;
        Address = address;
        Client = new HttpClient { BaseAddress = address };
    }

    public Uri Address { get; }

    public HttpClient Client { get; }

    public CapturedLogs Logs { get; }

    public IServiceProvider Services => _app.Services;

    /// <param name="configureServices">Runs after the resolver's own registrations, e.g. to decorate its store.</param>
    public static WebApplication Build(IDictionary<string, string?> settings, TimeProvider? time = null, Action<IServiceCollection>? configureServices = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Urls"] = "http://127.0.0.1:0", ["Spegel:Node:Name"] = "resolver-test" });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddSpegelDefaults("resolver");
        builder.AddResolver();
        if (time is not null)
        {
            builder.Services.Replace(ServiceDescriptor.Singleton(time));
        }

        configureServices?.Invoke(builder.Services);

        // Serilog writes JSON to the console; the tests read the same log events from a capturing factory instead.
        var logs = new CapturedLogs();
        builder.Services.RemoveAll<ILoggerFactory>();
        builder.Services.AddSingleton(logs);
        builder.Services.AddSingleton<ILoggerFactory>(_ => new LoggerFactory([logs]));

        var app = builder.Build();
        app.MapSpegelHealth();
        app.MapResolver();
        return app;
    }

    public static async Task<ResolverTestHost> StartAsync(IDictionary<string, string?>? settings = null, TimeProvider? time = null, Action<IServiceCollection>? configureServices = null)
    {
        var app = Build(settings ?? new Dictionary<string, string?>(), time, configureServices);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new ResolverTestHost(app, app.Services.GetRequiredService<CapturedLogs>(), new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
