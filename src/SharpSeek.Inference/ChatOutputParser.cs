// Splits streamed chat output into reasoning (the <think> block of R1, or of V3.1/V3.2/V4 in thinking mode), answer
// text and DeepSeek tool calls (V3/R1, V3.1 or DSML markup, as the template says), by
// chaining the tokenizer project's ReasoningParser and StreamingToolCallParser: only answer text is searched for
// tool-call markup. Partial tags are held back by each, so the pieces concatenate to the whole split.
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference;

/// <summary>What one piece of output adds: reasoning text, answer text and completed tool calls.</summary>
/// <param name="Reasoning">Text inside the think block.</param>
/// <param name="Content">Answer text, tool-call markup removed.</param>
/// <param name="ToolCalls">Calls completed by this piece (ids unset).</param>
public readonly record struct ChatDelta(string Reasoning, string Content, IReadOnlyList<ToolCall> ToolCalls)
{
    /// <summary>Whether the piece adds nothing.</summary>
    public bool IsEmpty => Reasoning.Length == 0 && Content.Length == 0 && ToolCalls.Count == 0;
}

/// <summary>Incremental splitter of chat output; one per response, not thread-safe.</summary>
public sealed class ChatOutputParser
{
    private readonly ReasoningParser _reasoning;
    private readonly StreamingToolCallParser _tools;

    /// <param name="startsInReasoning">The prompt opened the think block (R1's template; V3.1, V3.2 and V4 in thinking
    /// mode: <see cref="ChatTemplate.StartsInReasoning"/>).</param>
    /// <param name="format">The tool-call markup the model writes (<see cref="ChatTemplate.ToolCallFormat"/>).</param>
    public ChatOutputParser(bool startsInReasoning, ToolCallFormat format = ToolCallFormat.DeepSeekV3)
    {
        _reasoning = new ReasoningParser(startsInReasoning);
        StartsInReasoning = startsInReasoning;
        _tools = new StreamingToolCallParser(format);
    }

    /// <summary>A parser for a reply to a prompt rendered by <paramref name="template"/> with <paramref name="options"/>.</summary>
    public static ChatOutputParser For(ChatTemplate template, ChatRenderOptions options)
    {
        ArgumentNullException.ThrowIfNull(template);
        return new ChatOutputParser(template.StartsInReasoning(options), template.ToolCallFormat);
    }

    /// <summary>A parser for the reply to <paramref name="prompt"/>, which <paramref name="template"/> rendered with
    /// <paramref name="options"/>: in thinking mode the reply starts in reasoning only when the prompt leaves a think
    /// block open (its last &lt;think&gt; comes after its last &lt;/think&gt;). V3.1 opens none after tool output, where
    /// its answer follows directly, and a prefix message may already have closed it.</summary>
    public static ChatOutputParser For(ChatTemplate template, ChatRenderOptions options, string prompt)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(prompt);
        bool open = template.StartsInReasoning(options)
                    && prompt.LastIndexOf(ReasoningParser.StartTag, StringComparison.Ordinal) > prompt.LastIndexOf(ReasoningParser.EndTag, StringComparison.Ordinal);
        return new ChatOutputParser(open, template.ToolCallFormat);
    }

    /// <summary>Whether the reply started inside the think block.</summary>
    public bool StartsInReasoning { get; }

    /// <summary>Whether text now goes to the reasoning.</summary>
    public bool InReasoning => _reasoning.InReasoning;

    /// <summary>Tool calls returned so far.</summary>
    public int ToolCallCount { get; private set; }

    /// <summary>Adds a text delta.</summary>
    public ChatDelta Push(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        ReasoningResult r = _reasoning.Push(text);
        ToolCallResult t = r.Content.Length > 0 ? _tools.Push(r.Content) : new ToolCallResult("", []);
        return Count(new ChatDelta(r.Reasoning ?? "", t.Content, t.ToolCalls));
    }

    /// <summary>Ends the output: returns what was held back (an unfinished tool call as plain text).</summary>
    public ChatDelta Flush()
    {
        ReasoningResult r = _reasoning.Flush();
        ToolCallResult a = r.Content.Length > 0 ? _tools.Push(r.Content) : new ToolCallResult("", []);
        ToolCallResult b = _tools.Flush();
        return Count(new ChatDelta(r.Reasoning ?? "", a.Content + b.Content, [.. a.ToolCalls, .. b.ToolCalls]));
    }

    private ChatDelta Count(ChatDelta d)
    {
        ToolCallCount += d.ToolCalls.Count;
        return d;
    }
}
