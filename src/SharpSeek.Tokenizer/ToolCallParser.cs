// Parses DeepSeek tool-call markup out of generated text into structured calls.
//   V3/R1:  <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
//           [\n<｜tool▁call▁begin｜>...<｜tool▁call▁end｜>]...<｜tool▁calls▁end｜>
//   V3.1:   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
//   V3.2/V4: DSML (DsmlParser.cs): \n\n<｜DSML｜function_calls>/<｜DSML｜tool_calls> ... with one invoke per call
// Text before the calls (and any after them) is content. A call that is malformed or cut off stays in the content
// as raw text (the block markers themselves are dropped; for DSML the "\n\n" before the block too).
namespace SharpSeek.Tokenizer;

/// <summary>The tool-call markup a DeepSeek model writes.</summary>
public enum ToolCallFormat
{
    /// <summary>V3/R1: TYPE&lt;｜tool▁sep｜&gt;NAME\n```json\nARGS\n``` per call (the V3.1 form is accepted too).</summary>
    DeepSeekV3,

    /// <summary>V3.1: NAME&lt;｜tool▁sep｜&gt;ARGS per call.</summary>
    DeepSeekV31,

    /// <summary>V3.2: DSML in a &lt;｜DSML｜function_calls&gt; block.</summary>
    DsmlV32,

    /// <summary>V4: DSML in a &lt;｜DSML｜tool_calls&gt; block.</summary>
    DsmlV4,
}

/// <summary>Content text and tool calls, whole or as the increment of one <see cref="StreamingToolCallParser.Push"/>.</summary>
/// <param name="Content">Text that is not tool-call markup.</param>
/// <param name="ToolCalls">The completed calls (their <see cref="ToolCall.Id"/> is null: the caller assigns ids).</param>
public sealed record ToolCallResult(string Content, IReadOnlyList<ToolCall> ToolCalls);

/// <summary>DeepSeek tool-call markup parsing.</summary>
public static class ToolCallParser
{
    /// <summary>Opens the block of calls.</summary>
    public const string CallsBegin = "<｜tool▁calls▁begin｜>";

    /// <summary>Closes the block of calls.</summary>
    public const string CallsEnd = "<｜tool▁calls▁end｜>";

    /// <summary>Opens one call.</summary>
    public const string CallBegin = "<｜tool▁call▁begin｜>";

    /// <summary>Closes one call.</summary>
    public const string CallEnd = "<｜tool▁call▁end｜>";

    /// <summary>Separates the type (V3) or name (V3.1) from the rest of a call.</summary>
    public const string Sep = "<｜tool▁sep｜>";

    /// <summary>Splits a whole output into content and tool calls (malformed calls stay in the content).</summary>
    public static ToolCallResult Parse(string text, ToolCallFormat format = ToolCallFormat.DeepSeekV3)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parser = new StreamingToolCallParser(format);
        ToolCallResult a = parser.Push(text);
        ToolCallResult b = parser.Flush();
        return new ToolCallResult(a.Content + b.Content, [.. a.ToolCalls, .. b.ToolCalls]);
    }

    /// <summary>Parses the text between <see cref="CallBegin"/> and <see cref="CallEnd"/>, in the V3 form
    /// ("TYPE&lt;sep&gt;NAME\n```json\nARGS\n```") or the V3.1 form ("NAME&lt;sep&gt;ARGS"); null when it is neither.</summary>
    public static ToolCall? ParseCall(string body) => ParseCall(body, ToolCallFormat.DeepSeekV3);

    /// <summary>Parses the text of one call in the given format (V3 accepts the V3.1 form too; V3.1 takes only
    /// "NAME&lt;sep&gt;ARGS"); null when malformed.</summary>
    public static ToolCall? ParseCall(string body, ToolCallFormat format)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (format is not (ToolCallFormat.DeepSeekV3 or ToolCallFormat.DeepSeekV31))
            throw new ArgumentOutOfRangeException(nameof(format), format, "DSML calls are parsed by DsmlParser.ParseInvoke");
        int sep = body.IndexOf(Sep, StringComparison.Ordinal);
        if (sep <= 0)
            return null;
        string head = body[..sep], tail = body[(sep + Sep.Length)..];
        int newline = tail.IndexOf('\n');
        if (newline > 0 && format == ToolCallFormat.DeepSeekV3)
        {
            string name = tail[..newline];
            string rest = tail[(newline + 1)..].TrimEnd();
            foreach (string fence in (string[])["```json\n", "```\n"])
            {
                if (rest.StartsWith(fence, StringComparison.Ordinal) && rest.EndsWith("```", StringComparison.Ordinal)
                    && rest.Length >= fence.Length + 3)
                {
                    string args = rest[fence.Length..^3];
                    if (args.EndsWith('\n'))
                        args = args[..^1];
                    return new ToolCall(null, name.Trim(), args, head.Trim());
                }
            }
        }
        return new ToolCall(null, head.Trim(), tail.Trim());
    }
}

/// <summary>Parses tool-call markup from text that arrives in pieces; each call is returned once its closing tag
/// has arrived, and content text as soon as it cannot be the start of a tag. Not thread-safe.</summary>
public sealed class StreamingToolCallParser
{
    private readonly ToolCallFormat _format;
    private readonly string _callsBegin, _callsEnd, _callBegin, _callEnd;
    private string _held = string.Empty;
    private bool _inCalls;

    /// <param name="format">The markup to look for.</param>
    public StreamingToolCallParser(ToolCallFormat format = ToolCallFormat.DeepSeekV3)
    {
        if (!Enum.IsDefined(format))
            throw new ArgumentOutOfRangeException(nameof(format), format, "unknown tool-call format");
        _format = format;
        bool dsml = format is ToolCallFormat.DsmlV32 or ToolCallFormat.DsmlV4;
        _callsBegin = dsml ? DsmlParser.BlockStart(format) : ToolCallParser.CallsBegin;
        _callsEnd = dsml ? DsmlParser.BlockEnd(format) : ToolCallParser.CallsEnd;
        _callBegin = dsml ? "<" + ChatTemplate.DsmlToken + "invoke" : ToolCallParser.CallBegin;
        _callEnd = dsml ? "</" + ChatTemplate.DsmlToken + "invoke>" : ToolCallParser.CallEnd;
    }

    /// <summary>The markup this parser looks for.</summary>
    public ToolCallFormat Format => _format;

    /// <summary>Whether the parser is inside the block of calls.</summary>
    public bool InToolCalls => _inCalls;

    /// <summary>Adds generated text; returns the content and the calls it completes.</summary>
    public ToolCallResult Push(string delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        _held += delta;
        return Drain(final: false);
    }

    /// <summary>Returns what is held back at the end of generation (an unfinished call as raw content).</summary>
    public ToolCallResult Flush() => Drain(final: true);

    private ToolCallResult Drain(bool final)
    {
        string content = string.Empty;
        var calls = new List<ToolCall>();
        bool dsml = _format is ToolCallFormat.DsmlV32 or ToolCallFormat.DsmlV4;
        while (true)
        {
            if (!_inCalls)
            {
                int begin = _held.IndexOf(_callsBegin, StringComparison.Ordinal);
                if (begin >= 0)
                {
                    string before = _held[..begin];
                    if (dsml && before.EndsWith("\n\n", StringComparison.Ordinal))
                        before = before[..^2]; // the block's own separator, not content
                    content += before;
                    _held = _held[(begin + _callsBegin.Length)..];
                    _inCalls = true;
                    continue;
                }
                // hold back what may start the block (for DSML with the "\n\n" before it)
                int keep = final ? 0 : Math.Max(ReasoningParser.PartialTagLength(_held, _callsBegin),
                                                dsml ? ReasoningParser.PartialTagLength(_held, "\n\n" + _callsBegin) : 0);
                content += _held[..^keep];
                _held = _held[^keep..];
                return new ToolCallResult(content, calls);
            }

            // inside the block: skip whitespace between calls, then a whole call or the closing tag
            string rest = _held.TrimStart();
            if (rest.StartsWith(_callsEnd, StringComparison.Ordinal))
            {
                _held = rest[_callsEnd.Length..];
                _inCalls = false;
                continue;
            }
            if (rest.StartsWith(_callBegin, StringComparison.Ordinal))
            {
                int end = rest.IndexOf(_callEnd, _callBegin.Length, StringComparison.Ordinal);
                if (end >= 0)
                {
                    string body = rest[_callBegin.Length..end];
                    ToolCall? call = dsml ? DsmlParser.ParseInvoke(body, out _) : ToolCallParser.ParseCall(body, _format);
                    if (call is not null)
                        calls.Add(call);
                    else
                        content += rest[..(end + _callEnd.Length)];
                    _held = rest[(end + _callEnd.Length)..];
                    continue;
                }
            }
            else if (rest.Length > 0 && !_callBegin.StartsWith(rest, StringComparison.Ordinal)
                     && !_callsEnd.StartsWith(rest, StringComparison.Ordinal))
            {
                // text that is neither a call nor the end of the block: the markup is broken; the text is content
                // up to the next block, if any
                _held = rest;
                _inCalls = false;
                continue;
            }
            if (final)
            {
                content += _held;
                _held = string.Empty;
                _inCalls = false;
            }
            return new ToolCallResult(content, calls);
        }
    }
}
