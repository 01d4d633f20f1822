// Splitting of the raw text on added tokens, as HF tokenizers tokenizer/added_vocabulary.rs does: a first
// pass with the tokens whose `normalized` flag is false, then a second pass over the text left between
// them with the `normalized` ones (the DeepSeek files have no normalizer, so both passes see raw text).
// Each pass finds leftmost-longest, non-overlapping matches (an Aho-Corasick automaton there, a trie here),
// then applies single_word, lstrip and rstrip.
using System.Buffers;
using System.Text;

namespace SharpSeek.Tokenizer;

internal sealed class AddedVocabulary
{
    private readonly Trie? _raw;
    private readonly Trie? _normalized;
    private readonly Dictionary<int, AddedToken> _byId = [];

    public AddedVocabulary(IEnumerable<AddedToken> tokens)
    {
        var raw = new List<AddedToken>();
        var normalized = new List<AddedToken>();
        foreach (AddedToken t in tokens)
        {
            if (t.Content.Length == 0)
                continue; // HF ignores empty added tokens
            _byId[t.Id] = t;
        }
        foreach (AddedToken t in _byId.Values)
            (t.Normalized ? normalized : raw).Add(t);
        _raw = raw.Count > 0 ? new Trie(raw) : null;
        _normalized = normalized.Count > 0 ? new Trie(normalized) : null;
    }

    public bool IsEmpty => _byId.Count == 0;

    /// <summary>Appends (start, end, id) segments covering <paramref name="text"/>: id is an added token's id,
    /// or -1 for text that goes through the pre-tokenizer and BPE.</summary>
    public void Split(ReadOnlySpan<char> text, List<Segment> output)
    {
        if (text.IsEmpty)
            return;
        var first = new List<Segment>();
        FindMatches(text, 0, _raw, first);
        foreach (Segment s in first)
        {
            if (s.Id >= 0)
                output.Add(s);
            else
                FindMatches(text[s.Start..s.End], s.Start, _normalized, output);
        }
    }

    // added_vocabulary.rs find_matches, on `sentence` = the text at [offset, offset + sentence.Length)
    private void FindMatches(ReadOnlySpan<char> sentence, int offset, Trie? trie, List<Segment> output)
    {
        if (trie is null)
        {
            output.Add(new Segment(offset, offset + sentence.Length, -1));
            return;
        }
        int startOffset = 0, searchFrom = 0;
        while (trie.FindLeftmostLongest(sentence, searchFrom, out int matchStart, out int matchEnd, out AddedToken token))
        {
            searchFrom = matchEnd;
            int start = matchStart, stop = matchEnd;
            if (token.SingleWord)
            {
                bool startSpace = start == 0 || !EndsWithWord(sentence[..start]);
                bool stopSpace = stop == sentence.Length || !StartsWithWord(sentence[stop..]);
                if (!startSpace || !stopSpace)
                    continue;
            }
            if (token.LStrip)
                start = Math.Max(LeftmostSpaceAtEnd(sentence[..start]), startOffset);
            if (token.RStrip)
                stop += RightmostSpaceAtStart(sentence[stop..]);
            if (startOffset < start)
                output.Add(new Segment(offset + startOffset, offset + start, -1));
            output.Add(new Segment(offset + start, offset + stop, token.Id));
            startOffset = stop;
        }
        if (startOffset != sentence.Length)
            output.Add(new Segment(offset + startOffset, offset + sentence.Length, -1));
    }

    private static bool EndsWithWord(ReadOnlySpan<char> s) =>
        Rune.DecodeLastFromUtf16(s, out Rune r, out _) == OperationStatus.Done && (CharClasses.Of(r.Value) & CharClass.Word) != 0;

    private static bool StartsWithWord(ReadOnlySpan<char> s) =>
        Rune.DecodeFromUtf16(s, out Rune r, out _) == OperationStatus.Done && (CharClasses.Of(r.Value) & CharClass.Word) != 0;

    // start of the whitespace run that ends s (\s*$)
    private static int LeftmostSpaceAtEnd(ReadOnlySpan<char> s)
    {
        int i = s.Length;
        while (i > 0 && Rune.DecodeLastFromUtf16(s[..i], out Rune r, out int width) == OperationStatus.Done
               && (CharClasses.Of(r.Value) & CharClass.Space) != 0)
            i -= width;
        return i;
    }

    // length of the whitespace run that starts s (^\s*)
    private static int RightmostSpaceAtStart(ReadOnlySpan<char> s)
    {
        int i = 0;
        while (i < s.Length && Rune.DecodeFromUtf16(s[i..], out Rune r, out int width) == OperationStatus.Done
               && (CharClasses.Of(r.Value) & CharClass.Space) != 0)
            i += width;
        return i;
    }

    internal readonly record struct Segment(int Start, int End, int Id);

    /// <summary>A char trie over the token contents, with a vectorized skip to the next possible first char.</summary>
    private sealed class Trie
    {
        private readonly Dictionary<(int Node, char C), int> _edges = [];
        private readonly List<AddedToken?> _terminal = [null];
        private readonly SearchValues<char> _firstChars;

        public Trie(List<AddedToken> tokens)
        {
            var first = new HashSet<char>();
            foreach (AddedToken t in tokens)
            {
                first.Add(t.Content[0]);
                int node = 0;
                foreach (char c in t.Content)
                {
                    if (!_edges.TryGetValue((node, c), out int child))
                    {
                        child = _terminal.Count;
                        _terminal.Add(null);
                        _edges[(node, c)] = child;
                    }
                    node = child;
                }
                _terminal[node] ??= t; // two tokens with the same content: the first one wins
            }
            _firstChars = SearchValues.Create(first.ToArray());
        }

        public bool FindLeftmostLongest(ReadOnlySpan<char> text, int from, out int start, out int end, out AddedToken token)
        {
            int i = from;
            while (i < text.Length)
            {
                int skip = text[i..].IndexOfAny(_firstChars);
                if (skip < 0)
                    break;
                i += skip;
                int node = 0;
                AddedToken? best = null;
                int bestEnd = 0;
                for (int j = i; j < text.Length && _edges.TryGetValue((node, text[j]), out node); j++)
                {
                    if (_terminal[node] is AddedToken t)
                    {
                        best = t;
                        bestEnd = j + 1;
                    }
                }
                if (best is not null)
                {
                    start = i;
                    end = bestEnd;
                    token = best;
                    return true;
                }
                i++;
            }
            start = end = 0;
            token = null!;
            return false;
        }
    }
}
