// DSML tool calls, the markup of DeepSeek-V3.2 (block "function_calls") and DeepSeek-V4 (block "tool_calls"):
//   \n\n<｜DSML｜BLOCK>\n<｜DSML｜invoke name="NAME">\n<｜DSML｜parameter name="K" string="true">TEXT</｜DSML｜parameter>\n
//   <｜DSML｜parameter name="K2" string="false">JSON</｜DSML｜parameter>\n</｜DSML｜invoke>\n...</｜DSML｜BLOCK>
// Arguments are rebuilt as DeepSeek's decoder does: {"K": "TEXT", "K2": JSON} (", " and ": " separators; a string
// value quoted as Python's json.dumps(ensure_ascii=False)). A string="false" value must be JSON here (the reference
// splices it unchecked), so the arguments are always a valid JSON object.
// ParseCompletion is the strict whole-reply parser (as parse_message_from_completion_text): it throws on malformed
// markup, naming the part. The streaming parser (StreamingToolCallParser with a DSML format) keeps malformed markup
// as content instead, since a reply being generated cannot be refused.
using System.Text;
using System.Text.Json;

namespace SharpSeek.Tokenizer;

/// <summary>A reply split by <see cref="DsmlParser.ParseCompletion"/>.</summary>
/// <param name="Reasoning">The think block's text ("" in chat mode).</param>
/// <param name="Content">The answer text before any tool calls.</param>
/// <param name="ToolCalls">The calls (ids null).</param>
public sealed record DsmlCompletion(string Reasoning, string Content, IReadOnlyList<ToolCall> ToolCalls);

/// <summary>DeepSeek-V3.2/V4 DSML tool-call markup.</summary>
public static class DsmlParser
{
    private const string Dsml = ChatTemplate.DsmlToken;
    private const string Eos = "<｜end▁of▁sentence｜>";
    private const string Invoke = "<" + Dsml + "invoke";
    private const string InvokeEnd = "</" + Dsml + "invoke>";
    private const string Parameter = "<" + Dsml + "parameter";
    private const string ParameterEnd = "</" + Dsml + "parameter>";

    /// <summary>The block name of a DSML format: "function_calls" (V3.2) or "tool_calls" (V4).</summary>
    public static string BlockName(ToolCallFormat format) => format switch
    {
        ToolCallFormat.DsmlV32 => "function_calls",
        ToolCallFormat.DsmlV4 => "tool_calls",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "not a DSML format"),
    };

    /// <summary>The tag that opens the block of calls, e.g. <c>&lt;｜DSML｜tool_calls&gt;</c>.</summary>
    public static string BlockStart(ToolCallFormat format) => "<" + Dsml + BlockName(format) + ">";

    /// <summary>The tag that closes the block of calls.</summary>
    public static string BlockEnd(ToolCallFormat format) => "</" + Dsml + BlockName(format) + ">";

    /// <summary>Splits a whole reply (the text after the prompt, with or without the final end-of-sentence token)
    /// into reasoning, content and tool calls, as DeepSeek's <c>parse_message_from_completion_text</c>.</summary>
    /// <param name="text">The reply.</param>
    /// <param name="thinking">The prompt opened a think block: the reply starts with reasoning up to &lt;/think&gt;.</param>
    /// <param name="format"><see cref="ToolCallFormat.DsmlV32"/> or <see cref="ToolCallFormat.DsmlV4"/>.</param>
    /// <exception cref="InvalidDataException">The markup is malformed; the message names what is wrong and where.</exception>
    public static DsmlCompletion ParseCompletion(string text, bool thinking, ToolCallFormat format)
    {
        ArgumentNullException.ThrowIfNull(text);
        string callsStart = "\n\n" + BlockStart(format);
        if (text.EndsWith(Eos, StringComparison.Ordinal))
            text = text[..^Eos.Length];
        string reasoning = "";
        int at = 0;
        if (thinking)
        {
            int end = text.IndexOf("</think>", StringComparison.Ordinal);
            int calls = text.IndexOf(callsStart, StringComparison.Ordinal);
            if (end < 0 || (calls >= 0 && calls < end))
                throw new InvalidDataException("reply: the reasoning is not closed by </think> before the answer or tool calls");
            reasoning = text[..end];
            at = end + "</think>".Length;
        }
        int start = text.IndexOf(callsStart, at, StringComparison.Ordinal);
        string content = start < 0 ? text[at..] : text[at..start];
        var toolCalls = new List<ToolCall>();
        if (start >= 0)
        {
            int i = start + callsStart.Length;
            string blockEnd = BlockEnd(format);
            while (true)
            {
                if (!text.AsSpan(i).StartsWith("\n"))
                    throw new InvalidDataException($"reply: expected a newline after {(toolCalls.Count == 0 ? BlockStart(format) : $"tool call {toolCalls.Count - 1}")} at offset {i}");
                i++;
                if (text.AsSpan(i).StartsWith(blockEnd))
                {
                    i += blockEnd.Length;
                    break;
                }
                if (!text.AsSpan(i).StartsWith(Invoke))
                    throw new InvalidDataException($"reply: expected {Invoke} or {blockEnd} at offset {i}");
                int close = text.IndexOf(InvokeEnd, i, StringComparison.Ordinal);
                if (close < 0)
                    throw new InvalidDataException($"reply: tool call {toolCalls.Count} is not closed by {InvokeEnd}");
                ToolCall call = ParseInvoke(text[(i + Invoke.Length)..close], out string? error)
                                ?? throw new InvalidDataException($"reply: tool call {toolCalls.Count}: {error}");
                toolCalls.Add(call);
                i = close + InvokeEnd.Length;
            }
            if (i != text.Length)
                throw new InvalidDataException($"reply: unexpected text after {blockEnd}: '{Shorten(text[i..])}'");
        }
        foreach (string special in (string[])["<｜begin▁of▁sentence｜>", Eos, "<think>", "</think>", Dsml])
        {
            if (content.Contains(special, StringComparison.Ordinal) || reasoning.Contains(special, StringComparison.Ordinal))
                throw new InvalidDataException($"reply: unexpected '{special}' in the {(content.Contains(special, StringComparison.Ordinal) ? "content" : "reasoning")}");
        }
        return new DsmlCompletion(reasoning, content, toolCalls);
    }

    /// <summary>Parses one call from the text between <c>&lt;｜DSML｜invoke</c> and <c>&lt;/｜DSML｜invoke&gt;</c>:
    /// <c> name="NAME"&gt;\n</c> then one <c>&lt;｜DSML｜parameter name="K" string="true|false"&gt;V&lt;/｜DSML｜parameter&gt;\n</c>
    /// per argument. Null when malformed, with <paramref name="error"/> saying why.</summary>
    public static ToolCall? ParseInvoke(string inner, out string? error)
    {
        ArgumentNullException.ThrowIfNull(inner);
        int firstParam = inner.IndexOf(Parameter, StringComparison.Ordinal);
        string head = firstParam < 0 ? inner : inner[..firstParam];
        string trimmed = head.TrimStart();
        if (!trimmed.StartsWith("name=\"", StringComparison.Ordinal) || !trimmed.EndsWith("\">\n", StringComparison.Ordinal)
            || trimmed.Length < "name=\"\">\n".Length)
        {
            error = $"expected ' name=\"NAME\">' and a newline, got '{Shorten(head)}'";
            return null;
        }
        string name = trimmed["name=\"".Length..^"\">\n".Length];
        var args = new StringBuilder("{");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int i = firstParam;
        while (i >= 0 && i < inner.Length)
        {
            // <｜DSML｜parameter name="K" string="B">V</｜DSML｜parameter>\n
            int end = inner.IndexOf(ParameterEnd, i, StringComparison.Ordinal);
            if (end < 0)
            {
                error = $"parameter {seen.Count} of '{name}' is not closed by {ParameterEnd}";
                return null;
            }
            string p = inner[(i + Parameter.Length)..end];
            const string NameAttr = " name=\"", StringAttr = "\" string=\"";
            int s = p.IndexOf(StringAttr, StringComparison.Ordinal);
            int gt = s < 0 ? -1 : p.IndexOf("\">", s + StringAttr.Length, StringComparison.Ordinal);
            if (!p.StartsWith(NameAttr, StringComparison.Ordinal) || s < 0 || gt < 0)
            {
                error = $"parameter {seen.Count} of '{name}': expected ' name=\"K\" string=\"true|false\">', got '{Shorten(p)}'";
                return null;
            }
            string key = p[NameAttr.Length..s];
            string flag = p[(s + StringAttr.Length)..gt];
            string value = p[(gt + 2)..];
            if (flag is not ("true" or "false"))
            {
                error = $"parameter '{key}' of '{name}': string=\"{flag}\" is not true or false";
                return null;
            }
            if (!seen.Add(key))
            {
                error = $"parameter '{key}' of '{name}' is given twice";
                return null;
            }
            if (flag == "false" && !IsJson(value))
            {
                error = $"parameter '{key}' of '{name}' has string=\"false\" but its value is not JSON: '{Shorten(value)}'";
                return null;
            }
            if (seen.Count > 1)
                args.Append(", ");
            args.Append(PythonJson.Quote(key)).Append(": ").Append(flag == "true" ? PythonJson.Quote(value) : value);
            i = end + ParameterEnd.Length;
            if (!inner.AsSpan(i).StartsWith("\n"))
            {
                error = $"parameter '{key}' of '{name}': expected a newline after {ParameterEnd}";
                return null;
            }
            i++;
            if (i < inner.Length && !inner.AsSpan(i).StartsWith(Parameter))
            {
                error = $"unexpected text after parameter '{key}' of '{name}': '{Shorten(inner[i..])}'";
                return null;
            }
        }
        error = null;
        return new ToolCall(null, name, args.Append('}').ToString());
    }

    private static bool IsJson(string value)
    {
        try
        {
            using JsonDocument _ = JsonDocument.Parse(value);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..57] + "...";
}
