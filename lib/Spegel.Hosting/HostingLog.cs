using Microsoft.Extensions.Logging;

namespace Spegel.Hosting;

internal static partial class HostingLog
{
    [LoggerMessage(Level = LogLevel.Critical, Message = "invalid configuration {error}")]
    public static partial void InvalidConfiguration(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Critical, Message = "cannot listen {error}")]
    public static partial void CannotListen(ILogger logger, string error);
}
