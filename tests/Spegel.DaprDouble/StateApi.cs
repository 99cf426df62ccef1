using System.Globalization;
using Dapr.Client.Autogen.Grpc.v1;
using Google.Protobuf;
using Google.Protobuf.Collections;

namespace Spegel.DaprDouble;

/// <summary>
/// The state building block of one sidecar: resolves the component, prefixes keys the way daprd does
/// (<c>pkg/components/state/state_config.go</c>), and maps store errors to daprd's error codes.
/// </summary>
internal sealed class StateApi(SidecarOptions options, DaprBackplane backplane)
{
    private const string Separator = "||";
    private const string TtlMetadataKey = "ttlInSeconds";

    public GetStateResponse Get(GetStateRequest request)
    {
        var store = Resolve(request.StoreName);
        var entry = backplane.StateBackend(store.BackendName).Get(ModifyKey(store, request.Key));
        var response = new GetStateResponse();
        if (entry is not null)
        {
            response.Data = ByteString.CopyFrom(entry.Value);
            response.Etag = entry.ETag;
            AddExpiry(response.Metadata, entry);
        }

        return response;
    }

    public GetBulkStateResponse GetBulk(GetBulkStateRequest request)
    {
        var store = Resolve(request.StoreName);
        var backend = backplane.StateBackend(store.BackendName);
        var response = new GetBulkStateResponse();
        foreach (var key in request.Keys)
        {
            var item = new BulkStateItem { Key = key };
            try
            {
                var entry = backend.Get(ModifyKey(store, key));
                if (entry is not null)
                {
                    item.Data = ByteString.CopyFrom(entry.Value);
                    item.Etag = entry.ETag;
                    AddExpiry(item.Metadata, entry);
                }
            }
            catch (DaprApiException e)
            {
                // Bulk get reports per-key failures in the item, as daprd does.
                item.Error = e.Message;
            }

            response.Items.Add(item);
        }

        return response;
    }

    /// <summary>SaveState with several items is a bulk, not a transaction: items are written one by one.</summary>
    public void Save(SaveStateRequest request)
    {
        var store = Resolve(request.StoreName);
        var backend = backplane.StateBackend(store.BackendName);
        foreach (var item in request.States)
        {
            var mutation = Upsert(store, item);
            try
            {
                backend.Apply([mutation]);
            }
            catch (ETagMismatchException e)
            {
                throw DaprApiException.SaveETagMismatch(store.Name, e.Message);
            }
        }
    }

    public void Delete(DeleteStateRequest request)
    {
        var store = Resolve(request.StoreName);
        var mutation = new StateMutation(StateMutationKind.Delete, ModifyKey(store, request.Key), ETag: request.Etag?.Value);
        try
        {
            backplane.StateBackend(store.BackendName).Apply([mutation]);
        }
        catch (ETagMismatchException e)
        {
            throw DaprApiException.DeleteETagMismatch(request.Key, e.Message);
        }
    }

    public void DeleteBulk(DeleteBulkStateRequest request)
    {
        var store = Resolve(request.StoreName);
        var backend = backplane.StateBackend(store.BackendName);
        foreach (var item in request.States)
        {
            try
            {
                backend.Apply([new StateMutation(StateMutationKind.Delete, ModifyKey(store, item.Key), ETag: item.Etag?.Value)]);
            }
            catch (ETagMismatchException e)
            {
                throw DaprApiException.DeleteETagMismatch(item.Key, e.Message);
            }
        }
    }

    /// <summary>All operations succeed together or none is applied, ETag checks included.</summary>
    public void Transact(ExecuteStateTransactionRequest request)
    {
        var store = Resolve(request.StoreName);
        var mutations = new List<StateMutation>(request.Operations.Count);
        foreach (var operation in request.Operations)
        {
            var item = operation.Request ?? new StateItem();
            mutations.Add(operation.OperationType switch
            {
                "upsert" => Upsert(store, item),
                "delete" => new StateMutation(StateMutationKind.Delete, ModifyKey(store, item.Key), ETag: item.Etag?.Value),
                _ => throw DaprApiException.UnsupportedOperation(operation.OperationType),
            });
        }

        try
        {
            backplane.StateBackend(store.BackendName).Apply(mutations);
        }
        catch (ETagMismatchException e)
        {
            throw DaprApiException.Transaction(e.Message);
        }
    }

    /// <summary>The key as stored on the backend, e.g. <c>resolver||digest|sha256:…</c>.</summary>
    public string ModifyKey(StateStoreComponent store, string key)
    {
        if (key.Contains(Separator, StringComparison.Ordinal))
        {
            throw DaprApiException.IllegalKey(key);
        }

        var prefix = Prefix(store, options);
        return prefix.Length == 0 ? key : prefix + Separator + key;
    }

    internal static string Prefix(StateStoreComponent store, SidecarOptions options) =>
        store.KeyPrefix.ToLowerInvariant() switch
        {
            "none" => "",
            "name" => store.Name,
            "appid" => options.AppId,
            "namespace" => options.Namespace is { Length: > 0 } ns ? $"{ns}.{options.AppId}" : options.AppId,
            _ => store.KeyPrefix,
        };

    private StateMutation Upsert(StateStoreComponent store, StateItem item) => new(
        StateMutationKind.Upsert,
        ModifyKey(store, item.Key),
        item.Value?.ToByteArray() ?? [],
        item.Etag?.Value,
        item.Options?.Concurrency == StateOptions.Types.StateConcurrency.ConcurrencyFirstWrite,
        ParseTtl(store, item.Metadata));

    private static TimeSpan? ParseTtl(StateStoreComponent store, MapField<string, string> metadata)
    {
        if (!metadata.TryGetValue(TtlMetadataKey, out var text))
        {
            return null;
        }

        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seconds))
        {
            throw DaprApiException.SaveFailed(store.Name, $"failed to parse ttl from metadata: incorrect value '{text}' for metadata key {TtlMetadataKey}");
        }

        // -1 (or any value <= 0) means "never expires".
        return seconds > 0 ? TimeSpan.FromSeconds(seconds) : null;
    }

    private static void AddExpiry(MapField<string, string> metadata, StateEntry entry)
    {
        if (entry.ExpiresAt is { } at)
        {
            metadata["ttlExpireTime"] = at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        }
    }

    private StateStoreComponent Resolve(string name)
    {
        if (options.StateStores.Count == 0)
        {
            throw DaprApiException.StateStoreNotConfigured();
        }

        return options.StateStores.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal))
            ?? throw DaprApiException.StateStoreNotFound(name);
    }
}
