using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Spegel.Hosting;
using Spegel.Indexer;
using Spegel.Registry;
using Spegel.Resolver;

namespace Spegel.Observability.Tests.Support;

/// <summary>
/// One service built the way its Program.cs builds it, on Kestrel at a free loopback port, with its Serilog output
/// also captured (a <see cref="CaptureSink"/> in its services, behind the same configured levels as the console).
/// </summary>
public sealed class ServiceHost : IAsyncDisposable
{
    private readonly WebApplication app;

    private ServiceHost(string service, WebApplication app, Uri url, CapturedLog log)
    {
        Service = service;
        this.app = app;
        Url = url;
        Log = log;
        Client = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false }) { BaseAddress = url, Timeout = TimeSpan.FromSeconds(15) };
    }

    public string Service { get; }

    public Uri Url { get; }

    /// <summary>The URL without its trailing slash, as the services' options want it.</summary>
    public string Address => Url.ToString().TrimEnd('/');

    public HttpClient Client { get; }

    public CapturedLog Log { get; }

    public IServiceProvider Services => app.Services;

    /// <summary>Builds and starts <paramref name="service"/> (registry, indexer or resolver) with settings and service replacements.</summary>
    public static async Task<ServiceHost> StartAsync(string service, IDictionary<string, string?> settings, Action<IServiceCollection>? replace = null)
    {
        var log = CapturedLog.Create();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
        });
        builder.Services.AddSingleton<Serilog.Core.ILogEventSink>(new CaptureSink(log));
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddSpegelDefaults(service);
        switch (service)
        {
            case "registry":
                builder.AddRegistry();
                break;
            case "indexer":
                builder.AddIndexer();
                break;
            case "resolver":
                builder.AddResolver();
                break;
            default:
                throw new ArgumentException($"unknown service {service}", nameof(service));
        }

        replace?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapSpegelHealth();
        switch (service)
        {
            case "registry":
                app.MapRegistry();
                break;
            case "indexer":
                app.MapIndexer();
                break;
            default:
                app.MapResolver();
                break;
        }

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new ServiceHost(service, app, new Uri(address.TrimEnd('/') + "/"), log);
    }

    /// <summary>GET /metrics, parsed.</summary>
    public async Task<Scrape> ScrapeAsync() => Scrape.Parse(await Client.GetStringAsync("/metrics"));

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
