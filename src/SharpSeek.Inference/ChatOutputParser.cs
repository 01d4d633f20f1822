// Splits streamed chat output into reasoning (the R1 <think> block), answer text and DeepSeek tool calls, by
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
    private readonly StreamingToolCallParser _tools = new();

    /// <param name="startsInReasoning">The prompt opened the think block (DeepSeek-R1's template).</param>
    public ChatOutputParser(bool startsInReasoning)
    {
        _reasoning = new ReasoningParser(startsInReasoning);
    }

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
