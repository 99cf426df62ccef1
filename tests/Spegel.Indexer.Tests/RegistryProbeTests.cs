using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Spegel.Hosting;

namespace Spegel.Indexer.Tests;

/// <summary>The indexer's probe of its node's registry: what pauses and resumes heartbeats.</summary>
public sealed class RegistryProbeTests
{
    [Fact]
    public async Task IsServing_NeverAnswered_TrueSoAStartingRegistryHidesNothing()
    {
        var registry = new FakeRegistry { Answer = null };
        var probe = Probe(registry);
        Assert.True(await probe.IsServingAsync(default));
        Assert.True(await probe.IsServingAsync(default));
        Assert.Equal(2, registry.Requests);
    }

    [Fact]
    public async Task IsServing_AnsweredThenRefusedThenBack_FollowsTheRegistry()
    {
        var registry = new FakeRegistry { Answer = HttpStatusCode.OK };
        var probe = Probe(registry);
        Assert.True(await probe.IsServingAsync(default));

        registry.Answer = null;
        Assert.False(await probe.IsServingAsync(default));

        registry.Answer = HttpStatusCode.ServiceUnavailable;
        Assert.False(await probe.IsServingAsync(default));

        registry.Answer = HttpStatusCode.OK;
        Assert.True(await probe.IsServingAsync(default));
        Assert.Equal(new Uri("http://127.0.0.1:5000/healthz"), registry.LastUri);
    }

    [Fact]
    public async Task IsServing_ProbeOffOrNoAddress_TrueWithoutAsking()
    {
        var registry = new FakeRegistry { Answer = null };
        Assert.True(await Probe(registry, new IndexerOptions { ProbeRegistry = false }).IsServingAsync(default));
        Assert.True(await Probe(registry, address: null).IsServingAsync(default));
        Assert.Equal(0, registry.Requests);
    }

    [Fact]
    public async Task IsServing_RegistryStalls_FalseWithinTheHeartbeatInterval()
    {
        var registry = new FakeRegistry { Answer = HttpStatusCode.OK };
        var probe = Probe(registry, new IndexerOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(200) });
        Assert.True(await probe.IsServingAsync(default));

        registry.Stall = true;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(await probe.IsServingAsync(default));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the probe waited {clock.Elapsed.TotalMilliseconds:0} ms on a stalled registry");
    }

    private static RegistryProbe Probe(FakeRegistry registry, IndexerOptions? options = null, string? address = "http://127.0.0.1:5000") =>
        new(
            registry,
            Microsoft.Extensions.Options.Options.Create(new NodeOptions { Name = "node-a", Address = address }),
            Microsoft.Extensions.Options.Options.Create(options ?? new IndexerOptions()),
            NullLogger<RegistryProbe>.Instance);

    /// <summary>A registry as the probe's HTTP client sees it: a status, a refused connection (null), or a stall.</summary>
    private sealed class FakeRegistry : HttpMessageHandler, IHttpClientFactory
    {
        public HttpStatusCode? Answer { get; set; }

        public bool Stall { get; set; }

        public int Requests { get; private set; }

        public Uri? LastUri { get; private set; }

        public HttpClient CreateClient(string name) => new(this, disposeHandler: false);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests++;
            LastUri = request.RequestUri;
            if (Stall)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return Answer is { } status ? new HttpResponseMessage(status) : throw new HttpRequestException("Connection refused");
        }
    }
}
