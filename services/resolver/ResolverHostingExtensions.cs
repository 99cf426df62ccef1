namespace Spegel.Resolver;

/// <summary>Registers and maps the resolver service.</summary>
public static class ResolverHostingExtensions
{
    public static WebApplicationBuilder AddResolver(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder;
    }

    public static WebApplication MapResolver(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app;
    }
}
