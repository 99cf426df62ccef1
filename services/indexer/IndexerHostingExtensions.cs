namespace Spegel.Indexer;

/// <summary>Registers and maps the indexer service.</summary>
public static class IndexerHostingExtensions
{
    public static WebApplicationBuilder AddIndexer(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder;
    }

    public static WebApplication MapIndexer(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app;
    }
}
