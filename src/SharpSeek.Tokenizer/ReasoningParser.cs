// Splits DeepSeek-R1 output into reasoning ("reasoning_content") and answer ("content"). R1 writes
// "<think>\n...reasoning...\n</think>\n\nanswer"; when the R1 chat template already opened "<think>\n" in the
// prompt, the output starts inside the block and has only the closing tag. Text is kept as generated (no
// trimming), so the streamed pieces concatenate to exactly what Parse returns.
namespace SharpSeek.Tokenizer;

/// <summary>Reasoning and answer text, whole or as the increment of one <see cref="ReasoningParser.Push"/>.</summary>
/// <param name="Reasoning">Text inside the think block (null from <see cref="ReasoningParser.Parse"/> when the output has none).</param>
/// <param name="Content">Text after the think block.</param>
public readonly record struct ReasoningResult(string? Reasoning, string Content);

/// <summary>Separates R1-style reasoning from the answer, all at once or incrementally. Not thread-safe.</summary>
public sealed class ReasoningParser
{
    /// <summary>The tag that opens the reasoning.</summary>
    public const string StartTag = "<think>";

    /// <summary>The tag that closes the reasoning.</summary>
    public const string EndTag = "</think>";

    private enum State { Start, Reasoning, Content }

    private readonly bool _startsInReasoning;
    private State _state = State.Start;
    private string _held = string.Empty;
    private bool _sawReasoning;

    /// <param name="startsInReasoning">true when the prompt ended inside the think block (R1's template ends with
    /// "&lt;think&gt;\n"): text is reasoning until &lt;/think&gt;. false: text is reasoning only if the output itself
    /// begins with &lt;think&gt;.</param>
    public ReasoningParser(bool startsInReasoning = true)
    {
        _startsInReasoning = startsInReasoning;
        _sawReasoning = startsInReasoning;
    }

    /// <summary>Whether the parser is inside the think block.</summary>
    public bool InReasoning => _state == State.Reasoning || (_state == State.Start && _startsInReasoning);

    /// <summary>Splits a whole output.</summary>
    public static ReasoningResult Parse(string text, bool startsInReasoning = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parser = new ReasoningParser(startsInReasoning);
        ReasoningResult a = parser.Push(text);
        ReasoningResult b = parser.Flush();
        string reasoning = a.Reasoning + b.Reasoning;
        return new ReasoningResult(parser._sawReasoning ? reasoning : null, a.Content + b.Content);
    }

    /// <summary>Adds generated text; returns the reasoning and content it completes. Text that may be the start of
    /// a tag is held back until the next call shows whether it is one.</summary>
    public ReasoningResult Push(string delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        _held += delta;
        return Drain(final: false);
    }

    /// <summary>Returns any held-back text at the end of generation.</summary>
    public ReasoningResult Flush() => Drain(final: true);

    private ReasoningResult Drain(bool final)
    {
        string reasoning = string.Empty, content = string.Empty;
        while (true)
        {
            switch (_state)
            {
                case State.Start:
                    // an opening tag is dropped whether the prompt opened the block or the output does
                    if (_held.StartsWith(StartTag, StringComparison.Ordinal))
                    {
                        _held = _held[StartTag.Length..];
                        _state = State.Reasoning;
                        _sawReasoning = true;
                        continue;
                    }
                    if (!final && StartTag.StartsWith(_held, StringComparison.Ordinal))
                        return new ReasoningResult(reasoning, content); // "", "<", "<th", ...: not decided yet
                    _state = _startsInReasoning ? State.Reasoning : State.Content;
                    continue;
                case State.Reasoning:
                    int end = _held.IndexOf(EndTag, StringComparison.Ordinal);
                    if (end >= 0)
                    {
                        reasoning += _held[..end];
                        _held = _held[(end + EndTag.Length)..];
                        _state = State.Content;
                        continue;
                    }
                    int keep = final ? 0 : PartialTagLength(_held, EndTag);
                    reasoning += _held[..^keep];
                    _held = _held[^keep..];
                    return new ReasoningResult(reasoning, content);
                default:
                    content += _held;
                    _held = string.Empty;
                    return new ReasoningResult(reasoning, content);
            }
        }
    }

    /// <summary>Length of the longest end of <paramref name="text"/> that is a proper start of <paramref name="tag"/>.</summary>
    internal static int PartialTagLength(string text, string tag)
    {
        for (int n = Math.Min(text.Length, tag.Length - 1); n > 0; n--)
        {
            if (text.AsSpan(text.Length - n).SequenceEqual(tag.AsSpan(0, n)))
                return n;
        }
        return 0;
    }
}
