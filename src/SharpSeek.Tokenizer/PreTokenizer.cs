// Hand-written pre-tokenizers for DeepSeek's tokenizer.json files. Each is the HF tokenizers `Sequence` of
// `Split` (behavior Isolated) steps, run one after the other: a step splits every piece left by the step
// before into its matches and the gaps between them, and the next step sees only one piece at a time.
// The matchers below implement, on Unicode scalar values, exactly what the Oniguruma regexes of those
// files match (leftmost match, alternatives in order, greedy quantifiers with backtracking).
//
// deepseek-v3 (DeepSeek-V3/R1 tokenizer.json):
//   1. \p{N}{1,3}
//   2. [一-龥぀-ゟ゠-ヿ]+
//   3. [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
//      | ' '?[\p{P}\p{S}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
// deepseek-llm (DeepSeek LLM, DeepSeek-V2 tokenizer.json):
//   1. [\r\n]   2. \s?[A-Za-zµÀ-Ö...]+   3. \s?[!-/:-~！-／：-～‘-‟　-。]+   4. \s+$
//   5. [一-龥ࠀ-一가-퟿]+   6. Digits(individual_digits): every char::is_numeric char alone
// Both end with ByteLevel(use_regex=false), which maps bytes to chars and does not split.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;

namespace SharpSeek.Tokenizer;

/// <summary>The pre-tokenizer (regex splitting before BPE) of a DeepSeek tokenizer.</summary>
public enum PreTokenizerKind
{
    /// <summary>DeepSeek-V3 / R1: digits in groups of up to three, CJK runs, then a GPT-4o-like split.</summary>
    DeepSeekV3,

    /// <summary>DeepSeek LLM / DeepSeek-V2: newlines, letter runs, punctuation runs, trailing spaces, CJK runs, single digits.</summary>
    DeepSeekLlm,
}

/// <summary>Splits text into pre-tokens (the pieces BPE encodes one by one) exactly as a DeepSeek tokenizer.json
/// pre_tokenizer does; <see cref="BpeTokenizer"/> runs one, and so does BPE training. Thread-safe.</summary>
public sealed class PreTokenizer
{
    /// <summary>The three Split regexes of DeepSeek-V3's pre_tokenizer, in order, as tokenizer.json writes them
    /// (each with behavior Isolated, invert false, then ByteLevel without its own regex).</summary>
    public static IReadOnlyList<string> DeepSeekV3SplitPatterns { get; } =
    [
        "\\p{N}{1,3}",
        "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    ];

    [ThreadStatic]
    private static PieceList? t_pieces;

    private enum Step : byte { DigitGroups, V3Cjk, V3Main, CrLf, LlmLetters, LlmPunct, TrailingSpace, LlmCjk, SingleDigits }

    private static readonly Step[] V3Steps = [Step.DigitGroups, Step.V3Cjk, Step.V3Main];
    private static readonly Step[] LlmSteps =
        [Step.CrLf, Step.LlmLetters, Step.LlmPunct, Step.TrailingSpace, Step.LlmCjk, Step.SingleDigits];

    private readonly Step[] _steps;

    /// <summary>A pre-tokenizer of the given kind.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The kind is not a defined <see cref="PreTokenizerKind"/>.</exception>
    public PreTokenizer(PreTokenizerKind kind)
    {
        Kind = kind;
        _steps = kind switch
        {
            PreTokenizerKind.DeepSeekV3 => V3Steps,
            PreTokenizerKind.DeepSeekLlm => LlmSteps,
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown pre-tokenizer"),
        };
    }

    /// <summary>Which DeepSeek pre-tokenizer this is.</summary>
    public PreTokenizerKind Kind { get; }

    /// <summary>Appends the pieces of <paramref name="text"/> to <paramref name="pieces"/> as UTF-16 ranges; the
    /// pieces are in order, not empty, and cover the text. A lone surrogate reads as U+FFFD, as UTF-8 writes it.</summary>
    public void Split(ReadOnlySpan<char> text, List<Range> pieces)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        PieceList list = t_pieces ??= new PieceList();
        list.Clear();
        Split(text, list);
        for (int i = 0; i < list.Count; i++)
            pieces.Add(new Range(list.Start(i), list.End(i)));
    }

    /// <summary>Splits <paramref name="text"/> into pieces, appended to <paramref name="pieces"/> as
    /// (start, end) offsets in UTF-16 units. The pieces are in order and cover the text.</summary>
    internal void Split(ReadOnlySpan<char> text, PieceList pieces)
    {
        if (text.IsEmpty)
            return;
        Workspace w = Workspace.Get(text.Length);
        int n = w.Decode(text);
        var run = new Runner(_steps, w, pieces);
        run.Apply(0, 0, n);
    }

    private readonly ref struct Runner(Step[] steps, Workspace w, PieceList pieces)
    {
        private readonly Step[] _steps = steps;
        private readonly int[] _cp = w.CodePoints;
        private readonly CharClass[] _cls = w.Classes;
        private readonly int[] _off = w.Offsets;
        private readonly PieceList _pieces = pieces;

        // Runs step `s` on the piece [start, end) (code point indices) and hands every sub-piece on to step s+1.
        public void Apply(int s, int start, int end)
        {
            if (s == _steps.Length)
            {
                _pieces.Add(_off[start], _off[end]);
                return;
            }
            Step step = _steps[s];
            if (step == Step.TrailingSpace)
            {
                // \s+$ matches only the whitespace run that ends the piece ($ before a \n cannot occur: step 1
                // has put every \n in a piece of its own, where the run is the \n itself)
                int t = end;
                while (t > start && (_cls[t - 1] & CharClass.Space) != 0)
                    t--;
                if (t > start)
                    Apply(s + 1, start, t);
                if (t < end)
                    Apply(s + 1, t, end);
                return;
            }
            int gap = start, pos = start;
            while (pos < end)
            {
                int m = Match(step, pos, end);
                if (m < 0)
                {
                    pos++;
                    continue;
                }
                if (pos > gap)
                    Apply(s + 1, gap, pos);
                Apply(s + 1, pos, m);
                pos = gap = m;
            }
            if (gap < end)
                Apply(s + 1, gap, end);
        }

        // End (exclusive) of the match of `step` that starts at pos, or -1 when none starts there.
        private int Match(Step step, int pos, int end)
        {
            CharClass c = _cls[pos];
            CharClass next = pos + 1 < end ? _cls[pos + 1] : CharClass.None;
            switch (step)
            {
                case Step.DigitGroups: // \p{N}{1,3}
                    if ((c & CharClass.Number) == 0)
                        return -1;
                    return Math.Min(Run(pos, end, CharClass.Number), pos + 3);
                case Step.V3Cjk:
                    return (c & CharClass.V3Cjk) != 0 ? Run(pos, end, CharClass.V3Cjk) : -1;
                case Step.V3Main:
                    return MatchV3Main(pos, end, c, next);
                case Step.CrLf:
                    return (c & CharClass.CrLf) != 0 ? pos + 1 : -1;
                case Step.LlmLetters: // \s?[letters]+ (no letter is a space, so \s? never has to give back)
                    return SpaceThenRun(pos, end, c, next, CharClass.LlmLetter);
                case Step.LlmPunct: // \s?[punct]+ (U+3000 is both; either reading ends at the same place)
                    return SpaceThenRun(pos, end, c, next, CharClass.LlmPunct);
                case Step.LlmCjk:
                    return (c & CharClass.LlmCjk) != 0 ? Run(pos, end, CharClass.LlmCjk) : -1;
                case Step.SingleDigits: // Rust char::is_numeric, not Oniguruma's \p{N}
                    return (c & CharClass.RustNumeric) != 0 ? pos + 1 : -1;
                default:
                    throw new UnreachableException();
            }
        }

        private int MatchV3Main(int pos, int end, CharClass c, CharClass next)
        {
            // [ASCII punct][A-Za-z]+
            if ((c & CharClass.AsciiPunct) != 0 && (next & CharClass.AsciiLetter) != 0)
                return Run(pos + 1, end, CharClass.AsciiLetter);
            // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ : with the optional char first, else without it
            const CharClass LetterMark = CharClass.Letter | CharClass.Mark;
            if ((c & (CharClass.CrLf | CharClass.Letter | CharClass.Punct | CharClass.Symbol)) == 0 && (next & LetterMark) != 0)
                return Run(pos + 1, end, LetterMark);
            if ((c & LetterMark) != 0)
                return Run(pos, end, LetterMark);
            // ' '?[\p{P}\p{S}]+[\r\n]*
            const CharClass PunctSymbol = CharClass.Punct | CharClass.Symbol;
            if (_cp[pos] == ' ' && (next & PunctSymbol) != 0)
                return Run(Run(pos + 1, end, PunctSymbol), end, CharClass.CrLf);
            if ((c & PunctSymbol) != 0)
                return Run(Run(pos, end, PunctSymbol), end, CharClass.CrLf);
            if ((c & CharClass.Space) == 0)
                return -1;
            int e = Run(pos, end, CharClass.Space);
            // \s*[\r\n]+ : \s* gives back spaces until a \r or \n follows; the last one in the run ends the match
            for (int k = e - 1; k >= pos; k--)
            {
                if ((_cls[k] & CharClass.CrLf) != 0)
                    return k + 1;
            }
            // \s+(?!\S) : the whole run at the end of the piece, else the run less its last space
            if (e == end)
                return e;
            if (e - 1 > pos)
                return e - 1;
            return e; // \s+
        }

        private int SpaceThenRun(int pos, int end, CharClass c, CharClass next, CharClass run)
        {
            if ((c & CharClass.Space) != 0 && (next & run) != 0)
                return Run(pos + 1, end, run);
            return (c & run) != 0 ? Run(pos, end, run) : -1;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int Run(int pos, int end, CharClass k)
        {
            while (pos < end && (_cls[pos] & k) != 0)
                pos++;
            return pos;
        }
    }

    /// <summary>Per-thread buffers: the text decoded into scalar values, their classes and UTF-16 offsets.</summary>
    internal sealed class Workspace
    {
        [ThreadStatic]
        private static Workspace? t_current;

        public int[] CodePoints = new int[256];
        public CharClass[] Classes = new CharClass[256];
        public int[] Offsets = new int[257];

        private const int MaxKeptLength = 1 << 20; // longer texts get buffers that are not kept afterwards

        public static Workspace Get(int length)
        {
            Workspace w = length > MaxKeptLength ? new Workspace() : t_current ??= new Workspace();
            if (w.CodePoints.Length < length)
            {
                int size = Math.Max(length, w.CodePoints.Length * 2);
                w.CodePoints = new int[size];
                w.Classes = new CharClass[size];
                w.Offsets = new int[size + 1];
            }
            return w;
        }

        // Decodes UTF-16 into scalar values; a lone surrogate reads as U+FFFD, as UTF-8 encoding will write it.
        public int Decode(ReadOnlySpan<char> text)
        {
            int n = 0, i = 0;
            while (i < text.Length)
            {
                int cp;
                int width = 1;
                char ch = text[i];
                if (!char.IsSurrogate(ch))
                {
                    cp = ch;
                }
                else if (char.IsHighSurrogate(ch) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                {
                    cp = char.ConvertToUtf32(ch, text[i + 1]);
                    width = 2;
                }
                else
                {
                    cp = Rune.ReplacementChar.Value;
                }
                CodePoints[n] = cp;
                Classes[n] = CharClasses.Of(cp);
                Offsets[n] = i;
                n++;
                i += width;
            }
            Offsets[n] = i;
            return n;
        }
    }
}

/// <summary>A growable list of (start, end) pairs, reused between calls.</summary>
internal sealed class PieceList
{
    private int[] _items = new int[64];

    public int Count { get; private set; }

    public int Start(int i) => _items[2 * i];

    public int End(int i) => _items[2 * i + 1];

    public void Clear() => Count = 0;

    public void Add(int start, int end)
    {
        if (2 * Count + 2 > _items.Length)
            Array.Resize(ref _items, _items.Length * 2);
        _items[2 * Count] = start;
        _items[2 * Count + 1] = end;
        Count++;
    }
}
