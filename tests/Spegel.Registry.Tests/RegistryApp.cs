using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Spegel.Core.Content;
using Spegel.Hosting;
using Spegel.TestRig;

namespace Spegel.Registry.Tests;

/// <summary>The registry service in-process on real Kestrel (loopback, free port), over a given content store.</summary>
internal sealed class RegistryApp : IAsyncDisposable
{
    private readonly WebApplication app;

    private RegistryApp(WebApplication app, Uri url)
    {
        this.app = app;
        Url = url;
        Client = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(10) };
    }

    public Uri Url { get; }

    public HttpClient Client { get; }

    public IServiceProvider Services => app.Services;

    public static Task<RegistryApp> StartAsync(ILocalContent content, params string[] args) => StartAsync(content, null, null, args);

    public static Task<RegistryApp> StartAsync(ILocalContent content, CapturedLogs? logs, params string[] args) => StartAsync(content, logs, null, args);

    /// <summary>As Program.cs builds it; with <paramref name="logs"/>, log lines go there instead of the console.</summary>
    public static async Task<RegistryApp> StartAsync(ILocalContent content, CapturedLogs? logs, Action<WebApplicationBuilder>? configure, params string[] args)
    {
        var builder = WebApplication.CreateBuilder(["--urls", "http://127.0.0.1:0", .. args]);
        builder.AddSpegelDefaults("registry");
        builder.AddRegistry();
        builder.AddRegistryKestrelLimits();
        builder.Services.Replace(ServiceDescriptor.Singleton(content));
        if (logs is not null)
        {
            builder.Services.RemoveAll<ILoggerFactory>();
            builder.Services.AddSingleton<ILoggerFactory>(_ => new LoggerFactory([logs]));
        }

        configure?.Invoke(builder);

        var app = builder.Build();
        app.MapSpegelHealth();
        app.MapRegistry();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new RegistryApp(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
