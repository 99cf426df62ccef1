using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Spegel.Hosting;

/// <summary>Logs one line when the service is listening and one when it stops, with what an operator needs to identify it.</summary>
internal sealed partial class LifetimeLogger(
    string serviceName,
    ILogger<LifetimeLogger> logger,
    IHostApplicationLifetime lifetime,
    IOptions<SpegelOptions> spegel,
    IOptions<NodeOptions> node,
    IServer server) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() =>
        {
            var addresses = string.Join(',', server.Features.Get<IServerAddressesFeature>()?.Addresses ?? []);
            LogStarted(serviceName, node.Value.Name, spegel.Value.TransportKind, addresses, SpegelDefaultsExtensions.Version);
        });
        lifetime.ApplicationStopping.Register(() => LogStopping(serviceName, node.Value.Name));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        LogStopped(serviceName, node.Value.Name);
        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "service started {name} {node} {transport} {urls} {version}")]
    private partial void LogStarted(string name, string node, Transport transport, string urls, string version);

    [LoggerMessage(Level = LogLevel.Information, Message = "service stopping {name} {node}")]
    private partial void LogStopping(string name, string node);

    [LoggerMessage(Level = LogLevel.Information, Message = "service stopped {name} {node}")]
    private partial void LogStopped(string name, string node);
}
