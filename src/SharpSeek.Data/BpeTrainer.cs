// Byte-level BPE training (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword Units";
// GPT-2's byte-level variant) with DeepSeek-V3's pre-tokenizer, as Hugging Face tokenizers' BpeTrainer does it:
// count the unique pre-tokens once, keep the count of every adjacent symbol pair over those words, and after
// each merge update only the words that contain the merged pair. A max-heap with lazy deletion picks the next
// pair: an entry whose count is stale is pushed back with the current count.
// Determinism: the most frequent pair wins; ties go to the smaller (left id, right id), where byte tokens are
// numbered in vocabulary order and learned tokens in the order they were made. Nothing depends on hash order.
// Pre-tokens come from SharpSeek.Tokenizer's DeepSeek-V3 PreTokenizer and bytes map to GPT-2's alphabet by its
// ByteLevel, so the vocabulary is learned on the same pieces that BpeTokenizer later encodes.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using SharpSeek.Tokenizer;

namespace SharpSeek.Data;

/// <summary>Options for <see cref="BpeTrainer.Train"/>.</summary>
public sealed record BpeTrainerOptions
{
    /// <summary>Total vocabulary size: special tokens + 256 byte tokens + learned tokens.</summary>
    public int VocabSize { get; init; } = 4096;

    /// <summary>A pair must occur at least this often (weighted by word counts) to be merged.</summary>
    public int MinFrequency { get; init; } = 2;

    /// <summary>Special tokens at ids 0.. before the byte tokens.</summary>
    public IReadOnlyList<SpecialToken> LeadingSpecialTokens { get; init; } = SpecialTokens.Leading;

    /// <summary>Special tokens after the learned tokens, ending the vocabulary.</summary>
    public IReadOnlyList<SpecialToken> TrailingSpecialTokens { get; init; } = SpecialTokens.Trailing;

    /// <summary>Receives progress lines, or null.</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>Trains a byte-level BPE vocabulary.</summary>
public static class BpeTrainer
{
    /// <summary>
    /// Learns merges from <paramref name="documents"/> until the vocabulary has <see cref="BpeTrainerOptions.VocabSize"/>
    /// tokens or no pair reaches <see cref="BpeTrainerOptions.MinFrequency"/> (then the vocabulary is smaller).
    /// </summary>
    public static BpeVocabulary Train(IEnumerable<string> documents, BpeTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(options);
        int specials = options.LeadingSpecialTokens.Count + options.TrailingSpecialTokens.Count;
        int learnedWanted = options.VocabSize - specials - 256;
        if (learnedWanted < 0)
            throw new ArgumentException($"VocabSize {options.VocabSize} is smaller than 256 byte tokens + {specials} special tokens", nameof(options));
        if (options.MinFrequency < 1)
            throw new ArgumentException($"MinFrequency must be at least 1, got {options.MinFrequency}", nameof(options));

        Dictionary<string, long> wordCounts = CountWords(documents);
        options.Log?.WriteLine($"bpe: {wordCounts.Count:N0} unique pre-tokens");

        // Vocabulary so far: leading specials, then the 256 bytes in vocabulary order.
        var tokens = new List<string>();
        var tokenIds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (SpecialToken s in options.LeadingSpecialTokens)
            AddToken(s.Content);
        int[] byteToId = new int[256];
        foreach (byte b in ByteLevel.BytesInVocabularyOrder())
            byteToId[b] = AddToken(ByteLevel.ToChar(b).ToString());

        // Words as symbol arrays, with their counts.
        int wordCount = wordCounts.Count;
        var symbols = new int[wordCount][];
        var lengths = new int[wordCount];
        var counts = new long[wordCount];
        int w = 0;
        foreach ((string word, long count) in wordCounts)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(word); // a lone surrogate became U+FFFD in the pre-tokenizer too
            int[] s = new int[bytes.Length];
            for (int i = 0; i < bytes.Length; i++)
                s[i] = byteToId[bytes[i]];
            symbols[w] = s;
            lengths[w] = s.Length;
            counts[w] = count;
            w++;
        }

        var pairCounts = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, List<int>>();
        for (w = 0; w < wordCount; w++)
        {
            int[] s = symbols[w];
            for (int i = 0; i + 1 < lengths[w]; i++)
            {
                long key = Key(s[i], s[i + 1]);
                CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, key, out _) += counts[w];
                AddWord(pairWords, key, w);
            }
        }

        var heap = new PriorityQueue<long, (long Count, long Key)>(pairCounts.Count, PairOrder.Instance);
        foreach ((long key, long count) in pairCounts)
            heap.Enqueue(key, (count, key));

        var merges = new List<(int Left, int Right)>();
        var touched = new HashSet<long>();
        int[] seen = new int[wordCount];
        int learned = 0;
        while (learned < learnedWanted && heap.TryDequeue(out long top, out (long Count, long Key) priority))
        {
            long current = pairCounts.GetValueOrDefault(top);
            if (current != priority.Count)
            {
                if (current > 0)
                    heap.Enqueue(top, (current, top)); // stale entry: retry with the up-to-date count
                continue;
            }
            if (current < options.MinFrequency)
                break;

            int left = (int)(top >> 32), right = (int)top;
            string merged = tokens[left] + tokens[right];
            if (!tokenIds.TryGetValue(merged, out int id))
            {
                id = AddToken(merged);
                learned++;
            }
            merges.Add((left, right));

            // Rewrite every word that holds the pair: remove its pairs' counts, merge, add the new pairs' counts.
            touched.Clear();
            int stamp = merges.Count;
            foreach (int word in pairWords[top])
            {
                if (seen[word] == stamp)
                    continue;
                seen[word] = stamp;
                int[] s = symbols[word];
                int n = lengths[word];
                if (!Contains(s, n, left, right))
                    continue; // the list is not pruned when words lose a pair
                long c = counts[word];
                for (int i = 0; i + 1 < n; i++)
                    Subtract(pairCounts, Key(s[i], s[i + 1]), c);
                int j = 0;
                for (int i = 0; i < n; i++)
                {
                    if (i + 1 < n && s[i] == left && s[i + 1] == right)
                    {
                        s[j++] = id;
                        i++;
                    }
                    else
                    {
                        s[j++] = s[i];
                    }
                }
                lengths[word] = n = j;
                for (int i = 0; i + 1 < n; i++)
                {
                    long key = Key(s[i], s[i + 1]);
                    CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, key, out _) += c;
                    if (s[i] == id || s[i + 1] == id)
                    {
                        AddWord(pairWords, key, word);
                        touched.Add(key);
                    }
                }
            }
            pairWords.Remove(top);
            foreach (long key in touched)
            {
                long c = pairCounts.GetValueOrDefault(key);
                if (c > 0)
                    heap.Enqueue(key, (c, key));
            }

            if (options.Log is not null && merges.Count % 500 == 0)
                options.Log.WriteLine($"bpe: {merges.Count} merges, last '{merged}' x{current}");
        }

        int baseCount = tokens.Count;
        var added = new List<AddedToken>(specials);
        for (int i = 0; i < options.LeadingSpecialTokens.Count; i++)
            added.Add(ToAddedToken(i, options.LeadingSpecialTokens[i]));
        for (int i = 0; i < options.TrailingSpecialTokens.Count; i++)
            added.Add(ToAddedToken(baseCount + i, options.TrailingSpecialTokens[i]));
        options.Log?.WriteLine($"bpe: {merges.Count} merges, {learned} learned tokens, vocabulary {baseCount + options.TrailingSpecialTokens.Count}");
        return new BpeVocabulary(tokens, merges, added);

        int AddToken(string token)
        {
            if (!tokenIds.TryAdd(token, tokens.Count))
                throw new ArgumentException($"token '{token}' appears twice in the special tokens and bytes", nameof(options));
            tokens.Add(token);
            return tokens.Count - 1;
        }
    }

    /// <summary>Counts the pre-tokens of all documents.</summary>
    internal static Dictionary<string, long> CountWords(IEnumerable<string> documents)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        Dictionary<string, long>.AlternateLookup<ReadOnlySpan<char>> lookup = counts.GetAlternateLookup<ReadOnlySpan<char>>();
        var pieces = new List<Range>();
        var preTokenizer = new PreTokenizer(PreTokenizerKind.DeepSeekV3);
        foreach (string document in documents)
        {
            ArgumentNullException.ThrowIfNull(document, nameof(documents));
            pieces.Clear();
            preTokenizer.Split(document, pieces);
            foreach (Range r in pieces)
                CollectionsMarshal.GetValueRefOrAddDefault(lookup, document.AsSpan()[r], out _)++;
        }
        return counts;
    }

    // matched as written (no lstrip/rstrip/single_word) and not normalized, as DeepSeek-V3's added_tokens are
    private static AddedToken ToAddedToken(int id, SpecialToken token) => new(id, token.Content, token.Special);

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    private static void AddWord(Dictionary<long, List<int>> pairWords, long key, int word)
    {
        ref List<int>? list = ref CollectionsMarshal.GetValueRefOrAddDefault(pairWords, key, out _);
        list ??= [];
        if (list.Count == 0 || list[^1] != word)
            list.Add(word);
    }

    private static void Subtract(Dictionary<long, long> pairCounts, long key, long count)
    {
        ref long c = ref CollectionsMarshal.GetValueRefOrNullRef(pairCounts, key);
        Debug.Assert(!Unsafe.IsNullRef(ref c)); // every pair of a word was counted when the word was
        c -= count;
        if (c == 0)
            pairCounts.Remove(key);
    }

    private static bool Contains(int[] s, int n, int left, int right)
    {
        for (int i = 0; i + 1 < n; i++)
        {
            if (s[i] == left && s[i + 1] == right)
                return true;
        }
        return false;
    }

    // Heap order: higher count first, then smaller (left, right).
    private sealed class PairOrder : IComparer<(long Count, long Key)>
    {
        public static readonly PairOrder Instance = new();

        public int Compare((long Count, long Key) x, (long Count, long Key) y) =>
            x.Count != y.Count ? y.Count.CompareTo(x.Count) : x.Key.CompareTo(y.Key);
    }
}
