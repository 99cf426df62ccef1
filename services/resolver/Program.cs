using Spegel.Hosting;
using Spegel.Resolver;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddSpegelDefaults("resolver");
builder.AddResolver();

var app = builder.Build();
app.MapSpegelHealth();
app.MapResolver();
return await app.RunSpegelAsync();
