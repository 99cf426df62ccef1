using System.Diagnostics.CodeAnalysis;
using Mediator;
using Spegel.Core;
using Spegel.Core.Events;
using Spegel.Resolver.State;

namespace Spegel.Resolver.Events;

/// <summary>
/// Checks a received <see cref="ContentEvent"/> and turns it into the command for its handler, with keys
/// normalised (references as containerd names them). Anything that does not pass is dropped, never retried.
/// </summary>
public static class ContentEventTranslator
{
    /// <summary>Translates with <see cref="NodeAddressPolicy.AnyAddress"/>: any IP literal outside the reserved ranges.</summary>
    public static bool TryTranslate(ContentEvent contentEvent, [NotNullWhen(true)] out ICommand<EventOutcome>? command, [NotNullWhen(false)] out string? error) =>
        TryTranslate(contentEvent, NodeAddressPolicy.AnyAddress, out command, out error);

    public static bool TryTranslate(ContentEvent contentEvent, NodeAddressPolicy addresses, [NotNullWhen(true)] out ICommand<EventOutcome>? command, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(contentEvent);
        ArgumentNullException.ThrowIfNull(addresses);
        command = null;
        error = CheckEnvelope(contentEvent, addresses);
        if (error is not null)
        {
            return false;
        }

        var node = new NodeFacts(contentEvent.Node, contentEvent.Address, contentEvent.Stamp);
        switch (contentEvent)
        {
            case ContentAdvertised advertised when TryDigests(advertised.Digests, out var digests, out error) && TryBindings(advertised.Tags, out var tags, out error):
                command = new AdvertiseContent(node, digests, tags);
                return true;
            case ContentWithdrawn withdrawn when TryDigests(withdrawn.Digests, out var digests, out error) && TryTagKeys(withdrawn.Tags, out var tagKeys, out error):
                command = new WithdrawContent(node, digests, tagKeys);
                return true;
            case NodeSnapshot snapshot when TrySnapshot(snapshot, out error) && TryDigests(snapshot.Digests, out var digests, out error) && TryBindings(snapshot.Tags, out var tags, out error):
                command = new ApplySnapshotPart(node, snapshot.SnapshotId, snapshot.Part, snapshot.PartCount, digests, tags);
                return true;
            case NodeHeartbeat heartbeat when heartbeat.Interval >= TimeSpan.Zero:
                command = new RecordHeartbeat(node, heartbeat.Interval);
                return true;
            case NodeHeartbeat:
                error = "heartbeat interval must not be negative";
                return false;
            case ContentAdvertised or ContentWithdrawn or NodeSnapshot:
                return false;
            default:
                error = $"unknown event kind {contentEvent.GetType().Name}";
                return false;
        }
    }

    private static string? CheckEnvelope(ContentEvent e, NodeAddressPolicy addresses)
    {
        if (e.Version != ContentEvent.CurrentVersion)
        {
            return $"unknown event version {e.Version} (this resolver knows {ContentEvent.CurrentVersion})";
        }

        if (string.IsNullOrEmpty(e.Node) || e.Node.Length > 253 || e.Node.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_')))
        {
            return $"node name '{e.Node}' must be 1-253 letters, digits, '-', '.' or '_'";
        }

        if (!Uri.TryCreate(e.Address, UriKind.Absolute, out var address) || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
        {
            return $"node address '{e.Address}' must be an absolute http or https URL";
        }

        // Registries fetch from this address: a forged one must not point them at a host name or a metadata service.
        if (addresses.Check(address) is { } refused)
        {
            return refused;
        }

        return e.Epoch < 0 || e.Sequence < 0 ? $"stamp ({e.Epoch}, {e.Sequence}) must not be negative" : null;
    }

    private static bool TrySnapshot(NodeSnapshot snapshot, [NotNullWhen(false)] out string? error)
    {
        error = snapshot.PartCount < 1 ? $"snapshot part count {snapshot.PartCount} must be at least 1"
            : snapshot.Part < 1 || snapshot.Part > snapshot.PartCount ? $"snapshot part {snapshot.Part} must be in [1, {snapshot.PartCount}]"
            : snapshot.SnapshotId < 0 || snapshot.SnapshotId > snapshot.Sequence ? $"snapshot id {snapshot.SnapshotId} must be in [0, sequence {snapshot.Sequence}]"
            : null;
        return error is null;
    }

    private static bool TryDigests(IReadOnlyList<string>? values, [NotNullWhen(true)] out IReadOnlyList<string>? digests, [NotNullWhen(false)] out string? error)
    {
        var result = new List<string>(values?.Count ?? 0);
        foreach (var value in values ?? [])
        {
            if (!Digest.TryParse(value, out var digest))
            {
                (digests, error) = (null, $"'{value}' is not a digest");
                return false;
            }

            result.Add(ContentKey.ForDigest(digest));
        }

        (digests, error) = (result, null);
        return true;
    }

    private static bool TryBindings(IReadOnlyList<TagBinding>? values, [NotNullWhen(true)] out IReadOnlyList<TagBindingKey>? bindings, [NotNullWhen(false)] out string? error)
    {
        var result = new List<TagBindingKey>(values?.Count ?? 0);
        foreach (var binding in values ?? [])
        {
            if (binding is null || !TryTagKey(binding.Reference, out var tagKey, out error))
            {
                (bindings, error) = (null, binding is null ? "a tag binding is null" : $"'{binding.Reference}' is not a tagged image reference");
                return false;
            }

            if (!Digest.TryParse(binding.Digest, out var digest))
            {
                (bindings, error) = (null, $"'{binding.Digest}' (bound to '{binding.Reference}') is not a digest");
                return false;
            }

            result.Add(new TagBindingKey(tagKey, ContentKey.ForDigest(digest)));
        }

        (bindings, error) = (result, null);
        return true;
    }

    private static bool TryTagKeys(IReadOnlyList<string>? values, [NotNullWhen(true)] out IReadOnlyList<string>? tagKeys, [NotNullWhen(false)] out string? error)
    {
        var result = new List<string>(values?.Count ?? 0);
        foreach (var value in values ?? [])
        {
            if (!TryTagKey(value, out var tagKey, out error))
            {
                tagKeys = null;
                return false;
            }

            result.Add(tagKey);
        }

        (tagKeys, error) = (result, null);
        return true;
    }

    private static bool TryTagKey(string? value, [NotNullWhen(true)] out string? tagKey, [NotNullWhen(false)] out string? error)
    {
        if (Reference.TryParse(value, out var reference) && reference.Tag is not null)
        {
            (tagKey, error) = (ContentKey.ForTag(reference), null);
            return true;
        }

        (tagKey, error) = (null, $"'{value}' is not a tagged image reference");
        return false;
    }
}
