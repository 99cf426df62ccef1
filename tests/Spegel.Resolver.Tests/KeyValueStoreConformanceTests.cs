using System.Text;
using Spegel.Core.State;

namespace Spegel.Resolver.Tests;

/// <summary>
/// The contract of <see cref="IKeyValueStore"/>, run against every implementation: the in-memory twin and the
/// Dapr adapter (over the sidecar double, whose state semantics follow daprd's).
/// </summary>
public abstract class KeyValueStoreConformanceTests : IAsyncLifetime
{
    private IKeyValueStore? _store;

    protected IKeyValueStore Store => _store ?? throw new InvalidOperationException("not initialized");

    /// <summary>The clock the store's TTLs follow.</summary>
    protected ManualClock Clock { get; } = new();

    public async Task InitializeAsync() => _store = await CreateStoreAsync();

    public virtual Task DisposeAsync() => Task.CompletedTask;

    protected abstract Task<IKeyValueStore> CreateStoreAsync();

    [Fact]
    public async Task GetAsync_MissingKey_ReturnsNull()
    {
        Assert.Null(await Store.GetAsync("digest|missing"));
    }

    [Fact]
    public async Task TrySaveAsync_Unconditional_StoresValueWithETag()
    {
        Assert.True(await Store.TrySaveAsync("k|1", Bytes("{\"a\":1}"), SaveCondition.None));

        var entry = await Store.GetAsync("k|1");

        Assert.NotNull(entry);
        Assert.Equal("{\"a\":1}", Text(entry));
        Assert.False(string.IsNullOrEmpty(entry.ETag));
    }

    [Fact]
    public async Task TrySaveAsync_EveryWrite_ChangesETag()
    {
        await Store.TrySaveAsync("k|etag", Bytes("1"), SaveCondition.None);
        var first = (await Store.GetAsync("k|etag"))!.ETag;
        await Store.TrySaveAsync("k|etag", Bytes("1"), SaveCondition.None);
        var second = (await Store.GetAsync("k|etag"))!.ETag;

        Assert.NotEqual(first, second);
    }

    [Fact]
    public async Task TrySaveAsync_IfNotExistsOnMissingKey_Creates()
    {
        Assert.True(await Store.TrySaveAsync("k|new", Bytes("v"), SaveCondition.IfNotExists));
        Assert.Equal("v", Text(await Store.GetAsync("k|new")));
    }

    [Fact]
    public async Task TrySaveAsync_IfNotExistsOnExistingKey_ReturnsFalseAndKeepsValue()
    {
        await Store.TrySaveAsync("k|exists", Bytes("first"), SaveCondition.None);

        Assert.False(await Store.TrySaveAsync("k|exists", Bytes("second"), SaveCondition.IfNotExists));
        Assert.Equal("first", Text(await Store.GetAsync("k|exists")));
    }

    [Fact]
    public async Task TrySaveAsync_IfMatchCurrentETag_Writes()
    {
        await Store.TrySaveAsync("k|cas", Bytes("1"), SaveCondition.None);
        var read = await Store.GetAsync("k|cas");

        Assert.True(await Store.TrySaveAsync("k|cas", Bytes("2"), SaveCondition.IfMatch(read!.ETag)));
        Assert.Equal("2", Text(await Store.GetAsync("k|cas")));
    }

    [Fact]
    public async Task TrySaveAsync_IfMatchStaleETag_ReturnsFalseAndKeepsValue()
    {
        await Store.TrySaveAsync("k|stale", Bytes("1"), SaveCondition.None);
        var stale = (await Store.GetAsync("k|stale"))!.ETag;
        await Store.TrySaveAsync("k|stale", Bytes("2"), SaveCondition.None);

        Assert.False(await Store.TrySaveAsync("k|stale", Bytes("3"), SaveCondition.IfMatch(stale)));
        Assert.Equal("2", Text(await Store.GetAsync("k|stale")));
    }

    [Fact]
    public async Task TrySaveAsync_ConcurrentCompareAndSwap_ExactlyOneWins()
    {
        await Store.TrySaveAsync("k|race", Bytes("0"), SaveCondition.None);
        var read = await Store.GetAsync("k|race");

        var results = await Task.WhenAll(Enumerable.Range(1, 8).Select(i =>
            Store.TrySaveAsync("k|race", Bytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), SaveCondition.IfMatch(read!.ETag)).AsTask()));

        Assert.Single(results, r => r);
    }

    [Fact]
    public async Task TrySaveAsync_ConcurrentFirstWrites_ExactlyOneWins()
    {
        var results = await Task.WhenAll(Enumerable.Range(1, 8).Select(i =>
            Store.TrySaveAsync("k|first", Bytes("x"), SaveCondition.IfNotExists).AsTask()));

        Assert.Single(results, r => r);
    }

    [Fact]
    public async Task GetManyAsync_MixOfPresentAndMissing_ReturnsPresentOnlyWithETags()
    {
        await Store.TrySaveAsync("k|a", Bytes("A"), SaveCondition.None);
        await Store.TrySaveAsync("k|b", Bytes("B"), SaveCondition.None);

        var found = await Store.GetManyAsync(["k|a", "k|b", "k|missing"]);

        Assert.Equal(["k|a", "k|b"], found.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("A", Text(found["k|a"]));
        Assert.Equal((await Store.GetAsync("k|b"))!.ETag, found["k|b"].ETag);
    }

    [Fact]
    public async Task GetManyAsync_NoKeys_ReturnsEmpty()
    {
        Assert.Empty(await Store.GetManyAsync([]));
    }

    [Fact]
    public async Task TryDeleteAsync_MatchingETag_Deletes()
    {
        await Store.TrySaveAsync("k|del", Bytes("v"), SaveCondition.None);
        var read = await Store.GetAsync("k|del");

        Assert.True(await Store.TryDeleteAsync("k|del", read!.ETag));
        Assert.Null(await Store.GetAsync("k|del"));
    }

    [Fact]
    public async Task TryDeleteAsync_StaleETag_ReturnsFalseAndKeepsValue()
    {
        await Store.TrySaveAsync("k|del-stale", Bytes("1"), SaveCondition.None);
        var stale = (await Store.GetAsync("k|del-stale"))!.ETag;
        await Store.TrySaveAsync("k|del-stale", Bytes("2"), SaveCondition.None);

        Assert.False(await Store.TryDeleteAsync("k|del-stale", stale));
        Assert.Equal("2", Text(await Store.GetAsync("k|del-stale")));
    }

    [Fact]
    public async Task TryDeleteAsync_NoETag_DeletesAndToleratesMissing()
    {
        await Store.TrySaveAsync("k|del-any", Bytes("v"), SaveCondition.None);

        Assert.True(await Store.TryDeleteAsync("k|del-any", etag: null));
        Assert.True(await Store.TryDeleteAsync("k|del-any", etag: null));
        Assert.Null(await Store.GetAsync("k|del-any"));
    }

    [Fact]
    public async Task TrySaveAsync_DeletedKey_IfNotExistsCreatesAgain()
    {
        await Store.TrySaveAsync("k|again", Bytes("1"), SaveCondition.None);
        await Store.TryDeleteAsync("k|again", etag: null);

        Assert.True(await Store.TrySaveAsync("k|again", Bytes("2"), SaveCondition.IfNotExists));
    }

    [Fact]
    public async Task TrySaveAsync_WithTimeToLive_ExpiresAfterIt()
    {
        await Store.TrySaveAsync("node|ttl", Bytes("v"), SaveCondition.None, TimeSpan.FromSeconds(10));
        Clock.Advance(TimeSpan.FromSeconds(9));
        Assert.NotNull(await Store.GetAsync("node|ttl"));

        Clock.Advance(TimeSpan.FromSeconds(2));

        Assert.Null(await Store.GetAsync("node|ttl"));
        Assert.Empty(await Store.GetManyAsync(["node|ttl"]));
        Assert.True(await Store.TrySaveAsync("node|ttl", Bytes("w"), SaveCondition.IfNotExists));
    }

    [Fact]
    public async Task TrySaveAsync_RewriteWithoutTimeToLive_DoesNotExpire()
    {
        await Store.TrySaveAsync("node|ttl2", Bytes("v"), SaveCondition.None, TimeSpan.FromSeconds(5));
        await Store.TrySaveAsync("node|ttl2", Bytes("w"), SaveCondition.None);

        Clock.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal("w", Text(await Store.GetAsync("node|ttl2")));
    }

    [Fact]
    public async Task TrySaveAsync_KeyWithDoublePipe_Throws()
    {
        await Assert.ThrowsAnyAsync<Exception>(async () => await Store.TrySaveAsync("a||b", Bytes("v"), SaveCondition.None));
    }

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static string? Text(KeyValueEntry? entry) => entry is null ? null : Encoding.UTF8.GetString(entry.Value.Span);
}

public sealed class InMemoryKeyValueStoreTests : KeyValueStoreConformanceTests
{
    protected override Task<IKeyValueStore> CreateStoreAsync() => Task.FromResult<IKeyValueStore>(new InMemoryKeyValueStore(Clock));
}

public sealed class DaprKeyValueStoreTests : KeyValueStoreConformanceTests
{
    private DaprSidecarFixture? _dapr;

    protected override async Task<IKeyValueStore> CreateStoreAsync()
    {
        _dapr = await DaprSidecarFixture.StartAsync(Clock);
        return _dapr.CreateStore();
    }

    public override async Task DisposeAsync()
    {
        if (_dapr is not null)
        {
            await _dapr.DisposeAsync();
        }
    }
}
