using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Json;
using Serilog.Parsing;

namespace Spegel.Hosting;

/// <summary>
/// One JSON object per line, shaped like Spegel's slog output so operators can grep the same lines:
/// <c>{"time":…,"level":"info","msg":"OCI event","key":"sha256:…","type":"CREATE"}</c>.
/// The message is the template's constant text (placeholders left out, as slog keeps attributes out of "msg");
/// the placeholder values follow as fields in template order, then any other properties.
/// </summary>
public sealed class OperatorJsonFormatter : ITextFormatter
{
    private static readonly JsonValueFormatter ValueFormatter = new(typeTagName: null);

    public void Format(LogEvent logEvent, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(logEvent);
        ArgumentNullException.ThrowIfNull(output);

        output.Write("{\"time\":\"");
        output.Write(logEvent.Timestamp.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
        output.Write("\",\"level\":\"");
        output.Write(LevelName(logEvent.Level));
        output.Write("\",\"msg\":");
        JsonValueFormatter.WriteQuotedJsonString(ConstantText(logEvent.MessageTemplate), output);

        var written = new HashSet<string>(StringComparer.Ordinal);
        foreach (var token in logEvent.MessageTemplate.Tokens)
        {
            if (token is PropertyToken property && written.Add(property.PropertyName)
                && logEvent.Properties.TryGetValue(property.PropertyName, out var value))
            {
                WriteProperty(property.PropertyName, value, output);
            }
        }

        foreach (var (name, value) in logEvent.Properties)
        {
            // EventId is MEL bookkeeping that operators never grep for; SourceContext is kept, shorter, as "logger".
            if (name == "EventId" || !written.Add(name))
            {
                continue;
            }

            WriteProperty(name == "SourceContext" ? "logger" : name, value, output);
        }

        if (logEvent.Exception is not null)
        {
            output.Write(",\"error\":");
            JsonValueFormatter.WriteQuotedJsonString(logEvent.Exception.Message, output);
            output.Write(",\"exception\":");
            JsonValueFormatter.WriteQuotedJsonString(logEvent.Exception.ToString(), output);
        }

        output.Write('}');
        output.Write('\n');
    }

    private static void WriteProperty(string name, LogEventPropertyValue value, TextWriter output)
    {
        output.Write(',');
        JsonValueFormatter.WriteQuotedJsonString(name, output);
        output.Write(':');
        ValueFormatter.Format(value, output);
    }

    private static string ConstantText(MessageTemplate template)
    {
        var text = new System.Text.StringBuilder();
        foreach (var token in template.Tokens)
        {
            if (token is TextToken t)
            {
                text.Append(t.Text);
            }
        }

        // Collapse the gaps that removed placeholders leave behind.
        return string.Join(' ', text.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries)).TrimEnd(':', ',', ' ');
    }

    private static string LevelName(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose => "trace",
        LogEventLevel.Debug => "debug",
        LogEventLevel.Information => "info",
        LogEventLevel.Warning => "warn",
        LogEventLevel.Error => "error",
        _ => "fatal",
    };
}
