using Spegel.Core;

namespace Spegel.Indexer.Tests;

public class NodeContentIndexTests
{
    private static readonly byte[] Base = [1];
    private static readonly byte[] A = [2];
    private static readonly byte[] B = [3];
    private static readonly byte[] C = [4];

    [Fact]
    public void Remove_SharedLayer_StaysWhileAnotherImageUsesIt()
    {
        var index = new NodeContentIndex();
        index.Put(IndexerHarness.Image("docker.io/library/a:1", A, Base));
        index.Put(IndexerHarness.Image("docker.io/library/b:1", B, Base));

        var change = index.Remove("docker.io/library/a:1");

        Assert.Equal([Digest.ComputeSha256(A)], change.Removed);
        Assert.Equal("docker.io/library/a:1", Assert.Single(change.TagsRemoved).ToString());
        Assert.Contains(Digest.ComputeSha256(Base), index.Digests);
        Assert.Equal(2, index.DigestCount);
    }

    [Fact]
    public void Put_NewVersionOfSameName_WithdrawsOnlyWhatItNoLongerUses()
    {
        var index = new NodeContentIndex();
        index.Put(IndexerHarness.Image("docker.io/library/a:1", A, Base));

        var change = index.Put(IndexerHarness.Image("docker.io/library/a:1", B, Base));

        Assert.Equal([Digest.ComputeSha256(B)], change.Added);
        Assert.Equal([Digest.ComputeSha256(A)], change.Removed);
        Assert.Empty(change.TagsRemoved);
    }

    [Fact]
    public void Put_SameImageTwice_ChangesNothing()
    {
        var index = new NodeContentIndex();
        index.Put(IndexerHarness.Image("docker.io/library/a:1", A, Base));
        var change = index.Put(IndexerHarness.Image("docker.io/library/a:1", A, Base));
        Assert.True(change.IsEmpty);
        Assert.Equal(2, index.DigestCount);
    }

    [Fact]
    public void ReplaceAll_ImageGoneWhileAway_ReportsItsDigestsAndTagRemoved()
    {
        var index = new NodeContentIndex();
        index.Put(IndexerHarness.Image("docker.io/library/a:1", A, Base));
        index.Put(IndexerHarness.Image("docker.io/library/b:1", B, Base));

        var change = index.ReplaceAll([IndexerHarness.Image("docker.io/library/b:1", B, Base), IndexerHarness.Image("docker.io/library/c:1", C)]);

        Assert.Equal([Digest.ComputeSha256(C)], change.Added);
        Assert.Equal([Digest.ComputeSha256(A)], change.Removed);
        Assert.Equal("docker.io/library/a:1", Assert.Single(change.TagsRemoved).ToString());
    }

    [Fact]
    public void Remove_UnknownName_IsEmpty()
    {
        Assert.True(new NodeContentIndex().Remove("docker.io/library/none:1").IsEmpty);
    }
}
