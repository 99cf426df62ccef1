using System.Net;
using System.Text.Json;
using Grpc.Core;

namespace Spegel.DaprDouble;

/// <summary>An error as daprd reports it: a gRPC status for the gRPC API, an HTTP status and error code for the HTTP API.</summary>
internal sealed class DaprApiException(StatusCode grpcCode, HttpStatusCode httpCode, string errorCode, string message)
    : Exception(message)
{
    public StatusCode GrpcCode { get; } = grpcCode;

    public HttpStatusCode HttpCode { get; } = httpCode;

    public string ErrorCode { get; } = errorCode;

    public RpcException ToRpcException() => new(new Status(GrpcCode, Message));

    public string ToJson() => JsonSerializer.Serialize(new Dictionary<string, string>
    {
        ["errorCode"] = ErrorCode,
        ["message"] = Message,
    });

    // The texts below follow daprd's pkg/messages so that logs and assertions read the same.
    public static DaprApiException StateStoreNotConfigured() =>
        new(StatusCode.FailedPrecondition, HttpStatusCode.InternalServerError, "ERR_STATE_STORE_NOT_CONFIGURED", "state store is not configured");

    public static DaprApiException StateStoreNotFound(string store) =>
        new(StatusCode.InvalidArgument, HttpStatusCode.BadRequest, "ERR_STATE_STORE_NOT_FOUND", $"state store {store} is not found");

    public static DaprApiException IllegalKey(string key) =>
        new(StatusCode.InvalidArgument, HttpStatusCode.BadRequest, "ERR_MALFORMED_REQUEST", $"input key/keyPrefix '{key}' can't contain '||'");

    public static DaprApiException SaveETagMismatch(string store, string detail) =>
        new(StatusCode.Aborted, HttpStatusCode.Conflict, "ERR_STATE_SAVE", $"failed saving state in state store {store}: {detail}");

    public static DaprApiException DeleteETagMismatch(string key, string detail) =>
        new(StatusCode.Aborted, HttpStatusCode.Conflict, "ERR_STATE_DELETE", $"failed deleting state with key {key}: {detail}");

    public static DaprApiException SaveFailed(string store, string detail) =>
        new(StatusCode.Internal, HttpStatusCode.InternalServerError, "ERR_STATE_SAVE", $"failed saving state in state store {store}: {detail}");

    public static DaprApiException Transaction(string detail) =>
        new(StatusCode.Internal, HttpStatusCode.InternalServerError, "ERR_STATE_TRANSACTION", $"error while executing state transaction: {detail}");

    public static DaprApiException UnsupportedOperation(string operation) =>
        new(StatusCode.Unimplemented, HttpStatusCode.BadRequest, "ERR_NOT_SUPPORTED_STATE_OPERATION", $"operation type {operation} not supported");

    public static DaprApiException PubSubNotConfigured() =>
        new(StatusCode.FailedPrecondition, HttpStatusCode.BadRequest, "ERR_PUBSUB_NOT_CONFIGURED", "no pubsub is configured");

    public static DaprApiException PubSubEmpty() =>
        new(StatusCode.InvalidArgument, HttpStatusCode.NotFound, "ERR_PUBSUB_EMPTY", "pubsub name is empty");

    public static DaprApiException PubSubNotFound(string pubsub) =>
        new(StatusCode.InvalidArgument, HttpStatusCode.NotFound, "ERR_PUBSUB_NOT_FOUND", $"pubsub {pubsub} not found");

    public static DaprApiException TopicEmpty(string pubsub) =>
        new(StatusCode.InvalidArgument, HttpStatusCode.NotFound, "ERR_TOPIC_EMPTY", $"topic is empty in pubsub {pubsub}");

    public static DaprApiException CloudEventInvalid(string topic, string pubsub, string detail) =>
        new(StatusCode.InvalidArgument, HttpStatusCode.BadRequest, "ERR_PUBSUB_CLOUD_EVENTS_SER", $"error when marshalling cloud event envelope for topic {topic} pubsub {pubsub}: {detail}");

    public static DaprApiException MetadataKeyEmpty() =>
        new(StatusCode.InvalidArgument, HttpStatusCode.BadRequest, "ERR_MALFORMED_REQUEST", "metadata key is empty");
}
