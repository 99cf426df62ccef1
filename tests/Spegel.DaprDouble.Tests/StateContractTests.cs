using System.Text;
using System.Text.Json;
using Dapr;
using Dapr.Client;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;

namespace Spegel.DaprDouble.Tests;

/// <summary>The state API, driven by the real DaprClient, behaves as Dapr documents it.</summary>
public sealed class StateContractTests
{
    private const string Store = "statestore";

    private sealed record Node(string Name, int Layers);

    [Fact]
    public async Task SaveState_ThenGetState_RoundTrips()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);

        await client.SaveStateAsync(Store, "node|a", new Node("a", 3));

        Assert.Equal(new Node("a", 3), await client.GetStateAsync<Node>(Store, "node|a"));
        Assert.Null(await client.GetStateAsync<Node>(Store, "node|missing"));
    }

    [Fact]
    public async Task GetStateAndETag_ETagChangesOnEveryWrite_OldOneIsRejected()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        await client.SaveStateAsync(Store, "k", 1);
        var (_, first) = await client.GetStateAndETagAsync<int>(Store, "k");

        Assert.True(await client.TrySaveStateAsync(Store, "k", 2, first));
        var (value, second) = await client.GetStateAndETagAsync<int>(Store, "k");

        Assert.Equal(2, value);
        Assert.NotEqual(first, second);
        Assert.False(await client.TrySaveStateAsync(Store, "k", 3, first));
        Assert.Equal(2, await client.GetStateAsync<int>(Store, "k"));
    }

    [Fact]
    public async Task GetStateAndETag_MissingKey_EmptyETag()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);

        var (value, etag) = await client.GetStateAndETagAsync<Node>(Store, "missing");

        Assert.Null(value);
        Assert.Equal("", etag);
    }

    [Fact]
    public async Task TrySaveState_ETagOfAMissingKey_ReturnsFalse()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        await client.SaveStateAsync(Store, "k", 1);
        var (_, etag) = await client.GetStateAndETagAsync<int>(Store, "k");
        await client.DeleteStateAsync(Store, "k");

        Assert.False(await client.TrySaveStateAsync(Store, "k", 2, etag));
    }

    [Fact]
    public async Task TrySaveState_FirstWriteWithoutETag_CreatesOnlyOnce()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        var firstWrite = new StateOptions { Concurrency = ConcurrencyMode.FirstWrite };

        Assert.True(await client.TrySaveStateAsync(Store, "k", 1, "", firstWrite));
        Assert.False(await client.TrySaveStateAsync(Store, "k", 2, "", firstWrite));
        Assert.Equal(1, await client.GetStateAsync<int>(Store, "k"));
    }

    [Fact]
    public async Task SaveState_NoETag_LastWriteWins()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        await client.SaveStateAsync(Store, "k", 1);
        var (_, etag) = await client.GetStateAndETagAsync<int>(Store, "k");

        await client.SaveStateAsync(Store, "k", 2);

        Assert.Equal(2, await client.GetStateAsync<int>(Store, "k"));
        Assert.False(await client.TrySaveStateAsync(Store, "k", 3, etag));
    }

    [Fact]
    public async Task TrySaveState_FiftyConcurrentIncrements_Converge()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);

        await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                var (count, etag) = await client.GetStateAndETagAsync<int>(Store, "counter");
                var saved = string.IsNullOrEmpty(etag)
                    ? await client.TrySaveStateAsync(Store, "counter", count + 1, "", new StateOptions { Concurrency = ConcurrencyMode.FirstWrite })
                    : await client.TrySaveStateAsync(Store, "counter", count + 1, etag);
                if (saved)
                {
                    return;
                }
            }
        })));

        Assert.Equal(50, await client.GetStateAsync<int>(Store, "counter"));
    }

    [Fact]
    public async Task ExecuteStateTransaction_OneStaleETag_AppliesNothing()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        await client.SaveStateAsync(Store, "a", "a1");
        await client.SaveStateAsync(Store, "b", "b1");
        var (_, staleB) = await client.GetStateAndETagAsync<string>(Store, "b");
        await client.SaveStateAsync(Store, "b", "b2");

        var error = await Assert.ThrowsAsync<DaprException>(() => client.ExecuteStateTransactionAsync(Store,
        [
            new StateTransactionRequest("a", Json("a2"), StateOperationType.Upsert),
            new StateTransactionRequest("c", Json("c1"), StateOperationType.Upsert),
            new StateTransactionRequest("b", Json("b3"), StateOperationType.Upsert, etag: staleB),
        ]));

        Assert.Equal(StatusCode.Internal, Assert.IsType<RpcException>(error.InnerException).StatusCode);
        Assert.Equal("a1", await client.GetStateAsync<string>(Store, "a"));
        Assert.Equal("b2", await client.GetStateAsync<string>(Store, "b"));
        Assert.Null(await client.GetStateAsync<string>(Store, "c"));
    }

    [Fact]
    public async Task ExecuteStateTransaction_CurrentETags_AppliesAll()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        await client.SaveStateAsync(Store, "a", "a1");
        await client.SaveStateAsync(Store, "gone", "x");
        var (_, etagA) = await client.GetStateAndETagAsync<string>(Store, "a");

        await client.ExecuteStateTransactionAsync(Store,
        [
            new StateTransactionRequest("a", Json("a2"), StateOperationType.Upsert, etag: etagA),
            new StateTransactionRequest("gone", null, StateOperationType.Delete),
            new StateTransactionRequest("c", Json("c1"), StateOperationType.Upsert),
        ]);

        Assert.Equal("a2", await client.GetStateAsync<string>(Store, "a"));
        Assert.Null(await client.GetStateAsync<string>(Store, "gone"));
        Assert.Equal("c1", await client.GetStateAsync<string>(Store, "c"));
    }

    [Fact]
    public async Task SaveState_TtlInSeconds_KeyVanishesWhenTimePasses()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2025-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var backplane = new DaprBackplane(clock);
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        var ttl = new Dictionary<string, string> { ["ttlInSeconds"] = "10" };

        await client.SaveStateAsync(Store, "node|a", "alive", metadata: ttl);
        await client.SaveStateAsync(Store, "node|b", "forever");
        clock.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal("alive", await client.GetStateAsync<string>(Store, "node|a"));

        clock.Advance(TimeSpan.FromSeconds(2));

        Assert.Null(await client.GetStateAsync<string>(Store, "node|a"));
        Assert.Equal("forever", await client.GetStateAsync<string>(Store, "node|b"));
        Assert.DoesNotContain("resolver||node|a", backplane.GetStoredKeys(Store));
    }

    [Fact]
    public async Task SaveState_RewriteWithoutTtl_NoLongerExpires()
    {
        var clock = new FakeTimeProvider();
        await using var backplane = new DaprBackplane(clock);
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        await client.SaveStateAsync(Store, "k", "v1", metadata: new Dictionary<string, string> { ["ttlInSeconds"] = "5" });

        await client.SaveStateAsync(Store, "k", "v2", metadata: new Dictionary<string, string> { ["ttlInSeconds"] = "-1" });
        clock.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal("v2", await client.GetStateAsync<string>(Store, "k"));
    }

    [Fact]
    public async Task GetState_UnknownStore_InvalidArgumentLikeDaprd()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);

        var error = await Assert.ThrowsAsync<DaprException>(() => client.GetStateAsync<string>("nope", "k"));

        var rpc = Assert.IsType<RpcException>(error.InnerException);
        Assert.Equal(StatusCode.InvalidArgument, rpc.StatusCode);
        Assert.Equal("state store nope is not found", rpc.Status.Detail);
    }

    [Fact]
    public async Task SaveState_KeyWithSeparator_Rejected()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);

        var error = await Assert.ThrowsAsync<DaprException>(() => client.SaveStateAsync(Store, "a||b", 1));

        Assert.Equal(StatusCode.InvalidArgument, Assert.IsType<RpcException>(error.InnerException).StatusCode);
    }

    [Fact]
    public async Task TryDeleteState_StaleETag_ReturnsFalseAndKeeps()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        await client.SaveStateAsync(Store, "k", 1);
        var (_, stale) = await client.GetStateAndETagAsync<int>(Store, "k");
        await client.SaveStateAsync(Store, "k", 2);
        var (_, current) = await client.GetStateAndETagAsync<int>(Store, "k");

        Assert.False(await client.TryDeleteStateAsync(Store, "k", stale));
        Assert.Equal(2, await client.GetStateAsync<int>(Store, "k"));
        Assert.True(await client.TryDeleteStateAsync(Store, "k", current));
        Assert.Equal(0, await client.GetStateAsync<int>(Store, "k"));
    }

    [Fact]
    public async Task GetBulkState_MixedKeys_ReturnsValuesAndETags()
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        using var client = Harness.Client(sidecar);
        await client.SaveStateAsync(Store, "a", "x");
        var (_, etag) = await client.GetStateAndETagAsync<string>(Store, "a");

        var items = await client.GetBulkStateAsync(Store, ["a", "missing"], parallelism: null);

        var a = Assert.Single(items, i => i.Key == "a");
        Assert.Equal("\"x\"", a.Value);
        Assert.Equal(etag, a.ETag);
        Assert.Equal("", Assert.Single(items, i => i.Key == "missing").Value);
    }

    [Theory]
    [InlineData("appid", "resolver||k")]
    [InlineData("APPID", "resolver||k")]
    [InlineData("name", "statestore||k")]
    [InlineData("namespace", "spegel.resolver||k")]
    [InlineData("none", "k")]
    [InlineData("spegel", "spegel||k")]
    public async Task SaveState_KeyPrefixStrategy_StoredKeyAsDaprd(string keyPrefix, string stored)
    {
        await using var backplane = new DaprBackplane();
        await using var sidecar = await SidecarDouble.StartAsync(backplane, new SidecarOptions
        {
            AppId = "resolver",
            Namespace = "spegel",
            StateStores = [new StateStoreComponent(Store) { KeyPrefix = keyPrefix }],
        });
        using var client = Harness.Client(sidecar);

        await client.SaveStateAsync(Store, "k", "v");

        Assert.Equal([stored], backplane.GetStoredKeys(Store));
        Assert.Equal("\"v\"", Encoding.UTF8.GetString(backplane.GetStoredValue(Store, stored)!));
    }

    [Fact]
    public async Task TwoSidecars_SharedKeyPrefix_SeeEachOthersKeysAndETags()
    {
        await using var backplane = new DaprBackplane();
        StateStoreComponent[] shared = [new StateStoreComponent(Store) { KeyPrefix = "spegel" }];
        await using var one = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver", StateStores = shared });
        await using var two = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "registry", StateStores = shared });
        using var clientOne = Harness.Client(one);
        using var clientTwo = Harness.Client(two);

        await clientOne.SaveStateAsync(Store, "digest|sha256:aa", new Node("a", 1));
        var (seen, etag) = await clientTwo.GetStateAndETagAsync<Node>(Store, "digest|sha256:aa");
        Assert.True(await clientTwo.TrySaveStateAsync(Store, "digest|sha256:aa", new Node("b", 2), etag));

        Assert.Equal(new Node("a", 1), seen);
        Assert.False(await clientOne.TrySaveStateAsync(Store, "digest|sha256:aa", new Node("c", 3), etag));
        Assert.Equal(new Node("b", 2), await clientOne.GetStateAsync<Node>(Store, "digest|sha256:aa"));
    }

    [Fact]
    public async Task TwoSidecars_DefaultKeyPrefix_AreIsolatedByAppId()
    {
        await using var backplane = new DaprBackplane();
        await using var one = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "resolver" });
        await using var two = await SidecarDouble.StartAsync(backplane, new SidecarOptions { AppId = "registry" });
        using var clientOne = Harness.Client(one);
        using var clientTwo = Harness.Client(two);

        await clientOne.SaveStateAsync(Store, "k", "from resolver");

        Assert.Null(await clientTwo.GetStateAsync<string>(Store, "k"));
    }

    private static byte[] Json<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value);
}
