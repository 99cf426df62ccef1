using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Spegel.Core.Events;
using Spegel.Dapr;
using Spegel.Resolver.Events;
using static Spegel.Resolver.Tests.TestEvents;
using Spegel.TestRig;

namespace Spegel.Resolver.Tests;

/// <summary>
/// Events naming a node address a registry must not be sent to (a host name, the metadata service, an address
/// outside <c>Spegel:Resolver:PeerNetworks</c>) are dropped with a log line; a live node's address moves only with
/// a newer stamp, and then with a warning.
/// </summary>
public sealed class ForgedAddressTests
{
    private static readonly string Layer = Digest("layer");

    public static TheoryData<string, string, string?> DefaultPolicyCases => new()
    {
        // No list: any IP literal outside the reserved ranges.
        { "", "http://10.1.2.3:5000", null },
        { "", "http://[fd00::12]:5000", null },
        { "", "https://192.168.7.9", null },
        { "", "http://127.0.0.1:5000", null },
        { "", "http://registry.example:5000", "by IP address" },
        { "", "http://localhost:5000", "by IP address" },
        { "", "http://169.254.169.254/latest/meta-data", "reserved range 169.254.0.0/16" },
        { "", "http://[fe80::1]:5000", "reserved range fe80::/10" },
        { "", "http://[::ffff:169.254.169.254]:80", "reserved range 169.254.0.0/16" },
        { "", "http://0.0.0.0:5000", "reserved range" },
        { "", "http://[::]:5000", "reserved range" },
        { "", "http://224.0.0.1:5000", "reserved range" },

        // A list: inside it, or dropped.
        { "10.0.0.0/8,fd00::/8", "http://10.200.0.7:5000", null },
        { "10.0.0.0/8,fd00::/8", "http://[fd00::7]:5000", null },
        { "10.0.0.0/8,fd00::/8", "http://[::ffff:10.0.0.1]:5000", null },
        { "10.0.0.0/8,fd00::/8", "http://192.168.1.1:5000", "outside Spegel:Resolver:PeerNetworks" },
        { "10.0.0.0/8,fd00::/8", "http://[2001:db8::1]:5000", "outside Spegel:Resolver:PeerNetworks" },
        { "10.0.0.0/8,fd00::/8", "http://127.0.0.1:5000", "outside" },
        { "10.0.0.0/8", "http://node-a.cluster.local:5000", "by IP address" },

        // Everything listed still does not let in what was not listed explicitly.
        { "0.0.0.0/0,::/0", "http://169.254.169.254", "reserved range" },
        { "0.0.0.0/0,::/0", "http://[fe80::1]", "reserved range" },
        { "0.0.0.0/0", "http://127.0.0.1:5000", "is loopback" },
        { "0.0.0.0/0", "http://10.9.9.9:5000", null },

        // Listed explicitly: allowed.
        { "169.254.0.0/16", "http://169.254.10.1:5000", null },
        { "127.0.0.0/8", "http://127.0.0.1:5000", null },
        { "::1", "http://[::1]:5000", null },
        { "10.0.0.7", "http://10.0.0.7:5000", null },
        { "10.0.0.7", "http://10.0.0.8:5000", "outside" },
    };

    [Theory]
    [MemberData(nameof(DefaultPolicyCases))]
    public void Check_Address_AcceptedOrRefusedWithReason(string networks, string address, string? refusal)
    {
        var policy = NodeAddressPolicy.From(networks.Split(',', StringSplitOptions.RemoveEmptyEntries));

        var ok = ContentEventTranslator.TryTranslate(Advertised("node-a", 1, [Layer]) with { Address = address }, policy, out _, out var error);

        if (refusal is null)
        {
            Assert.True(ok, error);
        }
        else
        {
            Assert.False(ok);
            Assert.Contains(refusal, error, StringComparison.Ordinal);
            Assert.Contains(address, error, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("10.0.0.0/8", true)]
    public async Task PostCloudEvent_ForgedAddress_IsDroppedWithLogLine_AndNeverAnswered(string networks, bool listed)
    {
        var settings = new Dictionary<string, string?>();
        if (listed)
        {
            settings["Spegel:Resolver:PeerNetworks:0"] = networks;
        }

        await using var host = await ResolverTestHost.StartAsync(settings);
        var forged = listed ? "http://172.16.0.9:5000" : "http://169.254.169.254:80";

        using var response = await host.Client.SendAsync(CloudEvent(Advertised("node-x", 1, [Layer]) with { Address = forged }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("DROP", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        var line = Assert.Single(host.Logs.Lines, l => l.Message.StartsWith("content event dropped", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, line.Level);
        Assert.Contains("node-x", line.Message, StringComparison.Ordinal);
        Assert.Contains(forged, line.Message, StringComparison.Ordinal);
        var answer = await host.Client.GetFromJsonAsync<JsonElement>($"/v1/peers?key={Layer}");
        Assert.Empty(answer.GetProperty("peers").EnumerateArray());

        // The same node from an allowed address is applied: only the address was the problem.
        using var honest = await host.Client.SendAsync(CloudEvent(Advertised("node-x", 2, [Layer]) with { Address = "http://10.0.0.9:5000" }));
        Assert.Equal("SUCCESS", (await honest.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        answer = await host.Client.GetFromJsonAsync<JsonElement>($"/v1/peers?key={Layer}");
        Assert.Equal("http://10.0.0.9:5000", Assert.Single(answer.GetProperty("peers").EnumerateArray()).GetProperty("url").GetString());
    }

    [Fact]
    public async Task LiveNode_OlderOrEqualStampWithAnotherAddress_DoesNotMoveIt()
    {
        var logs = new CapturedLogs();
        using var resolver = new ResolverHarness(logs: logs);
        await resolver.ApplyAsync(Advertised("node-a", 5, [Layer]) with { Address = "http://10.0.0.1:5000" });

        // Same stamp (a replay with a forged address) and an older one: applied as duplicates, address untouched.
        await resolver.ApplyAsync(Heartbeat("node-a", 5) with { Address = "http://10.6.6.6:5000" });
        await resolver.ApplyAsync(Advertised("node-a", 3, [Digest("other")]) with { Address = "http://10.6.6.6:5000" });

        Assert.Equal("http://10.0.0.1:5000", (await resolver.Map.ReadNodeAsync("node-a"))!.Address);
        Assert.All((await resolver.AskAsync(Layer)).Peers, p => Assert.Equal("http://10.0.0.1:5000", p.Url));
        Assert.Equal("http://10.0.0.1:5000", Assert.Single((await resolver.AskAsync(Digest("other"))).Peers).Url);
        Assert.DoesNotContain(logs.Lines, l => l.Message.Contains("node address changed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LiveNode_NewerStampWithAnotherAddress_MovesItWithAWarning()
    {
        var logs = new CapturedLogs();
        using var resolver = new ResolverHarness(logs: logs);
        await resolver.ApplyAsync(Advertised("node-a", 5, [Layer]) with { Address = "http://10.0.0.1:5000" });

        // A pod restart: a new IP with a newer stamp. Applied, since refusing it would strand the node.
        await resolver.ApplyAsync(Heartbeat("node-a", 6) with { Address = "http://10.0.0.2:5000" });

        Assert.Equal("http://10.0.0.2:5000", Assert.Single((await resolver.AskAsync(Layer)).Peers).Url);
        var line = Assert.Single(logs.Lines, l => l.Message.StartsWith("node address changed", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, line.Level);
        Assert.Equal("node address changed while the node was live node-a http://10.0.0.1:5000 http://10.0.0.2:5000 1750000000000 6", line.Message);
    }

    [Fact]
    public async Task SilentNode_NewAddress_IsLoggedAsInformation()
    {
        var logs = new CapturedLogs();
        using var resolver = new ResolverHarness(logs: logs);
        await resolver.ApplyAsync(Advertised("node-a", 5, [Layer]) with { Address = "http://10.0.0.1:5000" });
        resolver.Clock.Advance(TimeSpan.FromMinutes(5));

        await resolver.ApplyAsync(Heartbeat("node-a", 1, epoch: Epoch + 1) with { Address = "http://10.0.0.3:5000" });

        var line = Assert.Single(logs.Lines, l => l.Message.StartsWith("node address changed", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, line.Level);
        Assert.Contains("http://10.0.0.3:5000", line.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_BadPeerNetworks_AreEachReported()
    {
        var options = new ResolverOptions();
        options.PeerNetworks.AddRange(["10.0.0.0/8", "fd00::/8", "10.0.0.7", "10.0.0.0/33", "10.1.2.3/8", "pods", "", "fd00::/129", "10", "10.1/16"]);

        var errors = options.Validate().ToList();

        Assert.True(errors.Count == 7, string.Join(Environment.NewLine, errors));
        Assert.All(errors, e => Assert.StartsWith("Spegel:Resolver:PeerNetworks entry", e, StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("'10.1.2.3/8'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("'pods'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Start_BadPeerNetworks_FailsNamingTheEntry()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var host = await ResolverTestHost.StartAsync(new Dictionary<string, string?> { ["Spegel:Resolver:PeerNetworks:0"] = "10.0.0.0/40" });
        });

        Assert.Contains("Spegel:Resolver:PeerNetworks entry '10.0.0.0/40'", ex.Message, StringComparison.Ordinal);
    }

    private static HttpRequestMessage CloudEvent(ContentEvent contentEvent)
    {
        var data = Encoding.UTF8.GetString(DaprContentEventPublisher.Serialize(contentEvent));
        var envelope = $$"""{"specversion":"1.0","id":"{{Guid.NewGuid()}}","source":"indexer","type":"com.dapr.event.sent","topic":"content","pubsubname":"spegel-pubsub","datacontenttype":"application/json","data":{{data}}}""";
        return new HttpRequestMessage(HttpMethod.Post, ContentTopics.SubscriptionRoute)
        {
            Content = new StringContent(envelope, Encoding.UTF8, "application/cloudevents+json"),
        };
    }
}
