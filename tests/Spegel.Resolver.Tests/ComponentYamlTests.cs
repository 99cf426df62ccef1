using System.Text.RegularExpressions;
using Spegel.Core.Events;

namespace Spegel.Resolver.Tests;

/// <summary>The component YAML agrees with the code: names, key prefix, scopes. (Text checks; no YAML parser here.)</summary>
public sealed partial class ComponentYamlTests
{
    private static readonly string Components = Path.Combine(RepoRoot(), "components");

    public static TheoryData<string> StateStores => new() { "redis/statestore.yaml", "postgresql/statestore.yaml", "inmemory/statestore.yaml" };

    public static TheoryData<string> PubSubs => new() { "redis/pubsub.yaml", "kafka/pubsub.yaml", "nats/pubsub.yaml", "inmemory/pubsub.yaml" };

    [Theory]
    [MemberData(nameof(StateStores))]
    public void StateStore_EveryBackend_NamedSharedAndScopedToResolver(string file)
    {
        var yaml = File.ReadAllText(Path.Combine(Components, file));

        Assert.Equal(ContentTopics.DefaultStateStore, MetadataName(yaml));
        Assert.Matches(@"- name: keyPrefix\s+value: name", yaml);
        Assert.Equal(["resolver"], Scopes(yaml));
    }

    [Theory]
    [MemberData(nameof(PubSubs))]
    public void PubSub_EveryBackend_NamedAndScopedToIndexerAndResolver(string file)
    {
        var yaml = File.ReadAllText(Path.Combine(Components, file));

        Assert.Equal(ContentTopics.DefaultPubSub, MetadataName(yaml));
        Assert.Equal(["indexer", "resolver"], Scopes(yaml));
    }

    [Fact]
    public void Subscription_Declarative_MatchesProgrammaticOne()
    {
        var yaml = File.ReadAllText(Path.Combine(Components, "subscriptions/content.yaml"));

        Assert.Contains("apiVersion: dapr.io/v2alpha1", yaml, StringComparison.Ordinal);
        Assert.Contains($"pubsubname: {ContentTopics.DefaultPubSub}", yaml, StringComparison.Ordinal);
        Assert.Contains($"topic: {ContentTopics.DefaultTopic}", yaml, StringComparison.Ordinal);
        Assert.Contains($"default: {ContentTopics.SubscriptionRoute}", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Resiliency_Targets_TheComponentsByName()
    {
        var yaml = File.ReadAllText(Path.Combine(Components, "common/resiliency.yaml"));

        Assert.Contains($"      {ContentTopics.DefaultStateStore}:", yaml, StringComparison.Ordinal);
        Assert.Contains($"      {ContentTopics.DefaultPubSub}:", yaml, StringComparison.Ordinal);
    }

    private static string MetadataName(string yaml) => MetadataNamePattern().Match(yaml).Groups[1].Value;

    private static List<string> Scopes(string yaml)
    {
        var block = yaml[(yaml.IndexOf("\nscopes:", StringComparison.Ordinal) + 1)..];
        return [.. ScopePattern().Matches(block).Select(m => m.Groups[1].Value)];
    }

    private static string RepoRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Spegel.Dapr.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("Spegel.Dapr.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^metadata:\s*\n\s+name: (\S+)", RegexOptions.Multiline)]
    private static partial Regex MetadataNamePattern();

    [GeneratedRegex(@"^  - (\S+)$", RegexOptions.Multiline)]
    private static partial Regex ScopePattern();
}
