using Spegel.Hosting;
using Spegel.Indexer;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddSpegelDefaults("indexer");
builder.AddIndexer();

var app = builder.Build();
app.MapSpegelHealth();
app.MapIndexer();
return await app.RunSpegelAsync();
