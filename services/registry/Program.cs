using Spegel.Hosting;
using Spegel.Registry;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddSpegelDefaults("registry");
builder.AddRegistry();
builder.AddRegistryKestrelLimits();

var app = builder.Build();
app.MapSpegelHealth();
app.MapRegistry();
return await app.RunSpegelAsync();
