// Parses DeepSeek tool-call markup out of generated text into structured calls.
//   V3/R1:  <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
//           [\n<｜tool▁call▁begin｜>...<｜tool▁call▁end｜>]...<｜tool▁calls▁end｜>
//   V3.1:   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
// Text before the calls (and any after them) is content. A call that is malformed or cut off stays in the content
// as raw text (the block markers themselves are dropped).
namespace SharpSeek.Tokenizer;

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

    /// <summary>Splits a whole output into content and tool calls.</summary>
    public static ToolCallResult Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parser = new StreamingToolCallParser();
        ToolCallResult a = parser.Push(text);
        ToolCallResult b = parser.Flush();
        return new ToolCallResult(a.Content + b.Content, [.. a.ToolCalls, .. b.ToolCalls]);
    }

    /// <summary>Parses the text between <see cref="CallBegin"/> and <see cref="CallEnd"/>, in the V3 form
    /// ("TYPE&lt;sep&gt;NAME\n```json\nARGS\n```") or the V3.1 form ("NAME&lt;sep&gt;ARGS"); null when it is neither.</summary>
    public static ToolCall? ParseCall(string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        int sep = body.IndexOf(Sep, StringComparison.Ordinal);
        if (sep <= 0)
            return null;
        string head = body[..sep], tail = body[(sep + Sep.Length)..];
        int newline = tail.IndexOf('\n');
        if (newline > 0)
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
    private string _held = string.Empty;
    private bool _inCalls;

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
        while (true)
        {
            if (!_inCalls)
            {
                int begin = _held.IndexOf(ToolCallParser.CallsBegin, StringComparison.Ordinal);
                if (begin >= 0)
                {
                    content += _held[..begin];
                    _held = _held[(begin + ToolCallParser.CallsBegin.Length)..];
                    _inCalls = true;
                    continue;
                }
                int keep = final ? 0 : ReasoningParser.PartialTagLength(_held, ToolCallParser.CallsBegin);
                content += _held[..^keep];
                _held = _held[^keep..];
                return new ToolCallResult(content, calls);
            }

            // inside the block: skip whitespace between calls, then a whole call or the closing tag
            string rest = _held.TrimStart();
            if (rest.StartsWith(ToolCallParser.CallsEnd, StringComparison.Ordinal))
            {
                _held = rest[ToolCallParser.CallsEnd.Length..];
                _inCalls = false;
                continue;
            }
            if (rest.StartsWith(ToolCallParser.CallBegin, StringComparison.Ordinal))
            {
                int end = rest.IndexOf(ToolCallParser.CallEnd, ToolCallParser.CallBegin.Length, StringComparison.Ordinal);
                if (end >= 0)
                {
                    string body = rest[ToolCallParser.CallBegin.Length..end];
                    if (ToolCallParser.ParseCall(body) is ToolCall call)
                        calls.Add(call);
                    else
                        content += rest[..(end + ToolCallParser.CallEnd.Length)];
                    _held = rest[(end + ToolCallParser.CallEnd.Length)..];
                    continue;
                }
            }
            else if (rest.Length > 0 && !ToolCallParser.CallBegin.StartsWith(rest, StringComparison.Ordinal)
                     && !ToolCallParser.CallsEnd.StartsWith(rest, StringComparison.Ordinal))
            {
                // text that is neither a call nor the end of the block: the markup is broken, keep it as content
                content += rest;
                _held = string.Empty;
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
