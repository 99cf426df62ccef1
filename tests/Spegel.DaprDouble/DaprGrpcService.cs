using Dapr.Client.Autogen.Grpc.v1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;

namespace Spegel.DaprDouble;

/// <summary>
/// The subset of <c>dapr.proto.runtime.v1.Dapr</c> the services call, on the message types of the Dapr.Protos
/// package. Dapr.Protos ships only the client, so the methods are bound by hand (<see cref="DaprGrpcMethodProvider"/>);
/// every other method of the service answers Unimplemented, as gRPC does for a method a server lacks.
/// </summary>
internal sealed class DaprGrpcService(SidecarDouble sidecar)
{
    public Task<GetStateResponse> GetState(GetStateRequest request, ServerCallContext context) =>
        Run(() => sidecar.State.Get(request));

    public Task<GetBulkStateResponse> GetBulkState(GetBulkStateRequest request, ServerCallContext context) =>
        Run(() => sidecar.State.GetBulk(request));

    public Task<Empty> SaveState(SaveStateRequest request, ServerCallContext context) =>
        Run(() => sidecar.State.Save(request));

    public Task<Empty> DeleteState(DeleteStateRequest request, ServerCallContext context) =>
        Run(() => sidecar.State.Delete(request));

    public Task<Empty> DeleteBulkState(DeleteBulkStateRequest request, ServerCallContext context) =>
        Run(() => sidecar.State.DeleteBulk(request));

    public Task<Empty> ExecuteStateTransaction(ExecuteStateTransactionRequest request, ServerCallContext context) =>
        Run(() => sidecar.State.Transact(request));

    public Task<Empty> PublishEvent(PublishEventRequest request, ServerCallContext context) =>
        Run(() => sidecar.Publish(
            request.PubsubName,
            request.Topic,
            request.Data.ToByteArray(),
            request.DataContentType,
            request.Metadata,
            TraceParent(context)));

    public Task<BulkPublishResponse> BulkPublishEvent(BulkPublishRequest request, ServerCallContext context) =>
        Run(() => BulkPublish(request, context));

    public Task<GetMetadataResponse> GetMetadata(GetMetadataRequest request, ServerCallContext context) =>
        Run(sidecar.MetadataResponse);

    public Task<Empty> SetMetadata(SetMetadataRequest request, ServerCallContext context) =>
        Run(() => sidecar.SetExtendedMetadata(request.Key, request.Value));

    private BulkPublishResponse BulkPublish(BulkPublishRequest request, ServerCallContext context)
    {
        var response = new BulkPublishResponse();
        foreach (var entry in request.Entries)
        {
            var metadata = new Dictionary<string, string>(request.Metadata, StringComparer.Ordinal);
            foreach (var (key, value) in entry.Metadata)
            {
                metadata[key] = value;
            }

            try
            {
                sidecar.Publish(request.PubsubName, request.Topic, entry.Event.ToByteArray(), entry.ContentType, metadata, TraceParent(context));
            }
            catch (DaprApiException e) when (e.GrpcCode == StatusCode.InvalidArgument && e.ErrorCode == "ERR_PUBSUB_CLOUD_EVENTS_SER")
            {
                response.FailedEntries.Add(new BulkPublishResponseFailedEntry { EntryId = entry.EntryId, Error = e.Message });
            }
        }

        return response;
    }

    private static string? TraceParent(ServerCallContext context) => context.RequestHeaders.GetValue("traceparent");

    private static Task<T> Run<T>(Func<T> call)
    {
        try
        {
            return Task.FromResult(call());
        }
        catch (DaprApiException e)
        {
            throw e.ToRpcException();
        }
    }

    private static Task<Empty> Run(Action call) => Run(() =>
    {
        call();
        return new Empty();
    });
}

/// <summary>Binds <see cref="DaprGrpcService"/>'s methods to their gRPC names, with protobuf marshallers of the Dapr.Protos messages.</summary>
internal sealed class DaprGrpcMethodProvider : IServiceMethodProvider<DaprGrpcService>
{
    internal const string ServiceName = "dapr.proto.runtime.v1.Dapr";

    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<DaprGrpcService> context)
    {
        Add(context, "GetState", GetStateRequest.Parser, (s, r, c) => s.GetState(r, c));
        Add(context, "GetBulkState", GetBulkStateRequest.Parser, (s, r, c) => s.GetBulkState(r, c));
        Add(context, "SaveState", SaveStateRequest.Parser, (s, r, c) => s.SaveState(r, c));
        Add(context, "DeleteState", DeleteStateRequest.Parser, (s, r, c) => s.DeleteState(r, c));
        Add(context, "DeleteBulkState", DeleteBulkStateRequest.Parser, (s, r, c) => s.DeleteBulkState(r, c));
        Add(context, "ExecuteStateTransaction", ExecuteStateTransactionRequest.Parser, (s, r, c) => s.ExecuteStateTransaction(r, c));
        Add(context, "PublishEvent", PublishEventRequest.Parser, (s, r, c) => s.PublishEvent(r, c));
        // DaprClient 1.19 tries BulkPublishEvent first and falls back to the alpha name on Unimplemented; serve both.
        Add(context, "BulkPublishEvent", BulkPublishRequest.Parser, (s, r, c) => s.BulkPublishEvent(r, c));
        Add(context, "BulkPublishEventAlpha1", BulkPublishRequest.Parser, (s, r, c) => s.BulkPublishEvent(r, c));
        Add(context, "GetMetadata", GetMetadataRequest.Parser, (s, r, c) => s.GetMetadata(r, c));
        Add(context, "SetMetadata", SetMetadataRequest.Parser, (s, r, c) => s.SetMetadata(r, c));
    }

    private static void Add<TRequest, TResponse>(
        ServiceMethodProviderContext<DaprGrpcService> context,
        string name,
        MessageParser<TRequest> parser,
        UnaryServerMethod<DaprGrpcService, TRequest, TResponse> invoker)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        var method = new Method<TRequest, TResponse>(
            MethodType.Unary,
            ServiceName,
            name,
            Marshallers.Create(r => r.ToByteArray(), parser.ParseFrom),
            Marshallers.Create(r => r.ToByteArray(), ResponseParser<TResponse>()));
        context.AddUnaryMethod(method, [], invoker);
    }

    private static Func<byte[], T> ResponseParser<T>()
        where T : class, IMessage<T> =>
        bytes => throw new NotSupportedException($"The server never parses {typeof(T).Name} ({bytes.Length} bytes).");
}

/// <summary>Checks <c>dapr-api-token</c> on every gRPC call when the sidecar has a <c>DAPR_API_TOKEN</c>.</summary>
internal sealed class ApiTokenInterceptor(SidecarDouble sidecar) : Grpc.Core.Interceptors.Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request,
        ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (sidecar.Options.DaprApiToken is { } expected)
        {
            var token = context.RequestHeaders.GetValue(SidecarDouble.ApiTokenHeader);
            if (token is null)
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, "missing api token in request metadata"));
            }

            if (!string.Equals(token, expected, StringComparison.Ordinal))
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, "authentication error: api token mismatch"));
            }
        }

        return continuation(request, context);
    }
}
