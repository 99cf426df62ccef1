using System.Text.Json.Nodes;

namespace Spegel.Deploy.Tests;

/// <summary>Each overlay's Dapr components: the backends it pairs and what those backends need to start.</summary>
public class BackendTests
{
    /// <summary>
    /// Metadata each component type cannot start without (Dapr's component metadata: "required"), plus what this
    /// project relies on: JetStream consumers shared by the resolvers (durable queue group).
    /// </summary>
    private static readonly Dictionary<string, string[]> Required = new(StringComparer.Ordinal)
    {
        ["state.redis"] = ["redisHost"],
        ["state.postgresql"] = ["connectionString"],
        ["pubsub.redis"] = ["redisHost"],
        ["pubsub.kafka"] = ["brokers", "authType"],
        ["pubsub.jetstream"] = ["natsURL", "deliverPolicy", "durableName", "queueGroupName"],
    };

    public static TheoryData<string> Overlays => RenderTests.Overlays;

    public static TheoryData<string, string, string, string[]> Pairings => new()
    {
        { "redis", "state.redis", "pubsub.redis", ["spegel-redis"] },
        { "postgresql", "state.postgresql", "pubsub.redis", ["spegel-postgresql", "spegel-redis"] },
        { "kafka", "state.postgresql", "pubsub.kafka", ["spegel-postgresql"] },
        { "nats", "state.redis", "pubsub.jetstream", ["spegel-redis"] },
    };

    [Theory]
    [MemberData(nameof(Pairings))]
    public void Components_Overlay_PairTheDocumentedBackends(string backend, string state, string pubsub, string[] secrets)
    {
        var components = Kustomize.Render(Kustomize.Overlay(backend)).DaprComponents;

        Assert.Equal(new[] { pubsub, state }.Order(StringComparer.Ordinal), components.Select(c => c.Str("spec", "type")!).Order(StringComparer.Ordinal));
        var referenced = components.SelectMany(Metadata).Select(m => m.Str("secretKeyRef", "name")).OfType<string>().Distinct();
        Assert.Equal(secrets.Order(StringComparer.Ordinal), referenced.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Pairings))]
    public void Secrets_Overlay_AreNamedInTheOperationsGuide(string backend, string state, string pubsub, string[] secrets)
    {
        var guide = File.ReadAllText(Path.Combine(Kustomize.RepoRoot, "docs", "operations.md"));

        Assert.Contains($"overlays/{backend}", guide, StringComparison.Ordinal);
        Assert.Contains(state, guide, StringComparison.Ordinal);
        Assert.Contains(pubsub, guide, StringComparison.Ordinal);
        Assert.All(secrets, s => Assert.Contains(s, guide, StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Components_Overlay_CarryTheirBackendsRequiredMetadata(string backend)
    {
        foreach (var component in Kustomize.Render(Kustomize.Overlay(backend)).DaprComponents)
        {
            var type = component.Str("spec", "type")!;
            var name = $"{component.Str("metadata", "name")} ({type})";
            Assert.True(Required.TryGetValue(type, out var keys), $"{name}: no required metadata known for this type; add it to the table");
            var metadata = Metadata(component).ToDictionary(m => m.Str("name")!, StringComparer.Ordinal);
            foreach (var key in keys)
            {
                Assert.True(metadata.TryGetValue(key, out var entry), $"{name}: metadata '{key}' is required");
                var hasValue = !string.IsNullOrWhiteSpace(entry.Str("value"));
                var hasSecret = entry.Str("secretKeyRef", "name") is not null && entry.Str("secretKeyRef", "key") is not null;
                Assert.True(hasValue || hasSecret, $"{name}: metadata '{key}' has neither a value nor a secretKeyRef");
            }

            if (metadata.Values.Any(m => m["secretKeyRef"] is not null))
            {
                Assert.Equal("kubernetes", component.Str("auth", "secretStore"));
            }

            if (type == "state.postgresql")
            {
                // v2: one row per key with TTL; v1 stores JSONB and is not what the resolver was measured against.
                Assert.Equal("v2", component.Str("spec", "version"));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void StateStore_Overlay_SharesOneKeySpaceAcrossApps(string backend)
    {
        var state = Assert.Single(Kustomize.Render(Kustomize.Overlay(backend)).DaprComponents, c => c.Str("spec", "type")!.StartsWith("state.", StringComparison.Ordinal));

        Assert.Contains(Metadata(state), m => m.Str("name") == "keyPrefix" && m.Str("value") == "name");
    }

    private static IEnumerable<JsonObject> Metadata(JsonObject component) =>
        (component.At("spec", "metadata") as JsonArray)?.Cast<JsonObject>() ?? [];
}
