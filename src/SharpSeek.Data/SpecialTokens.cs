// The special tokens of DeepSeek-V3's chat format (tokenizer_config.json chat_template) and of R1's reasoning
// (<think>, </think>), as the trained tokenizer lays them out: BOS, EOS and pad first (ids 0-2, inside the BPE
// vocabulary as in V3), the chat and tool markers after the learned tokens (added tokens, as in V3).
using SharpSeek.Tokenizer;

namespace SharpSeek.Data;

/// <summary>One special token: its text and whether Hugging Face treats it as special (skipped when decoding with skip_special_tokens).</summary>
public sealed record SpecialToken(string Content, bool Special);

/// <summary>DeepSeek-V3's special token strings; those SharpSeek.Tokenizer's chat template and parsers name are theirs.</summary>
public static class SpecialTokens
{
    /// <summary>Beginning of sequence.</summary>
    public const string BeginOfSentence = ChatTemplate.DefaultBosToken;
    /// <summary>End of sequence; also separates documents in token shards.</summary>
    public const string EndOfSentence = "<｜end▁of▁sentence｜>";
    /// <summary>Padding.</summary>
    public const string Pad = "<｜▁pad▁｜>";
    /// <summary>Starts a user turn.</summary>
    public const string User = "<｜User｜>";
    /// <summary>Starts an assistant turn.</summary>
    public const string Assistant = "<｜Assistant｜>";
    /// <summary>Opens reasoning.</summary>
    public const string ThinkBegin = ReasoningParser.StartTag;
    /// <summary>Closes reasoning.</summary>
    public const string ThinkEnd = ReasoningParser.EndTag;
    /// <summary>Tool-call markers of the chat template.</summary>
    public const string ToolCallsBegin = ToolCallParser.CallsBegin, ToolCallsEnd = ToolCallParser.CallsEnd,
        ToolCallBegin = ToolCallParser.CallBegin, ToolCallEnd = ToolCallParser.CallEnd, ToolSep = ToolCallParser.Sep,
        ToolOutputsBegin = "<｜tool▁outputs▁begin｜>", ToolOutputsEnd = "<｜tool▁outputs▁end｜>",
        ToolOutputBegin = "<｜tool▁output▁begin｜>", ToolOutputEnd = "<｜tool▁output▁end｜>";

    /// <summary>Tokens placed before the byte tokens (ids 0, 1, 2), flagged special as in V3.</summary>
    public static readonly IReadOnlyList<SpecialToken> Leading =
        [new(BeginOfSentence, true), new(EndOfSentence, true), new(Pad, true)];

    /// <summary>Tokens placed after the learned tokens, in V3's relative order; V3 does not flag them special.</summary>
    public static readonly IReadOnlyList<SpecialToken> Trailing =
    [
        new(User, false), new(Assistant, false), new(ThinkBegin, false), new(ThinkEnd, false),
        new(ToolCallsBegin, false), new(ToolCallsEnd, false), new(ToolCallBegin, false), new(ToolCallEnd, false),
        new(ToolOutputsBegin, false), new(ToolOutputsEnd, false), new(ToolOutputBegin, false), new(ToolOutputEnd, false),
        new(ToolSep, false),
    ];
}
