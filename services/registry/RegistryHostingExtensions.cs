using Microsoft.Extensions.Options;
using Spegel.Containerd;
using Spegel.Core.Content;
using Spegel.Hosting;

namespace Spegel.Registry;

/// <summary>Registers and maps the registry service: the distribution API over the node's containerd.</summary>
public static class RegistryHostingExtensions
{
    public static WebApplicationBuilder AddRegistry(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddValidatedOptions<RegistryOptions>(RegistryOptions.SectionName);
        services.AddOptions<ContainerdOptions>().BindConfiguration(ContainerdOptions.SectionName);
        services.AddSingleton(sp => new ContainerdClient(
            sp.GetRequiredService<IOptions<ContainerdOptions>>().Value,
            sp.GetRequiredService<ILogger<ContainerdClient>>()));
        services.AddSingleton<ILocalContent, ContainerdLocalContent>();
        services.AddSingleton<DistributionHandler>();
        services.AddHealthChecks().AddCheck<ContainerdHealthCheck>("containerd", tags: [SpegelDefaultsExtensions.ReadyTag]);

        // Registry clients send large headers only by mistake or malice; keep Kestrel's limits tight.
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.Limits.MaxRequestLineSize = 8 * 1024;
            kestrel.AddServerHeader = false;
        });
        return builder;
    }

    public static WebApplication MapRegistry(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseMiddleware<RequestLogMiddleware>();
        app.Map("/v2", (HttpContext context, DistributionHandler handler) => handler.HandleAsync(context));
        app.Map("/v2/{**rest}", (HttpContext context, DistributionHandler handler) => handler.HandleAsync(context));
        return app;
    }
}
