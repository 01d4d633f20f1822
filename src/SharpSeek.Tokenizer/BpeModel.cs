// Byte-level BPE: a piece's UTF-8 bytes start as one symbol each and adjacent pairs are merged by rank,
// lowest rank first and leftmost among equal ranks, with a priority queue over a linked list of symbols,
// as HF tokenizers models/bpe/word.rs merge_all does (including its test for stale queue entries).
// Results are cached per piece text.
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;

namespace SharpSeek.Tokenizer;

internal sealed class BpeModel
{
    private const int MaxCachedPieceLength = 256; // UTF-16 units; HF caches words shorter than 256 bytes
    private const int CacheCapacity = 100_000;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    private readonly Dictionary<long, long> _merges; // (left << 32 | right) -> (rank << 32 | merged id)
    private readonly int[] _byteIds;                  // byte -> id of its one-char token, -1 when absent
    private readonly bool _ignoreMerges;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheBySpan;
    private int _cacheCount;

    /// <param name="vocab">byte-level token string -> id</param>
    /// <param name="merges">merge rules in rank order</param>
    /// <param name="ignoreMerges">a piece that is itself a vocabulary token becomes that token without merging</param>
    /// <param name="source">names the file or caller in error messages</param>
    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, bool ignoreMerges, string source)
    {
        _vocab = vocab;
        _vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _ignoreMerges = ignoreMerges;
        _cacheBySpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();

        _byteIds = new int[256];
        for (int b = 0; b < 256; b++)
            _byteIds[b] = vocab.TryGetValue(ByteLevel.ByteToChar[b].ToString(), out int id) ? id : -1;

        _merges = new Dictionary<long, long>(merges.Count, PairComparer.Instance);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            (string left, string right) = merges[rank];
            int a = Lookup(left, rank, source);
            int b = Lookup(right, rank, source);
            int merged = Lookup(left + right, rank, source);
            _merges[Key(a, b)] = ((long)rank << 32) | (uint)merged; // a repeated pair keeps its last rank, as in HF
        }
    }

    private int Lookup(string token, int rank, string source) =>
        _vocab.TryGetValue(token, out int id)
            ? id
            : throw new InvalidDataException($"{source}: merge {rank} uses '{token}', which is not in the vocabulary");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Appends the ids of one pre-tokenized piece.</summary>
    public void Encode(ReadOnlySpan<char> piece, List<int> ids)
    {
        if (piece.IsEmpty)
            return;
        if (_cacheBySpan.TryGetValue(piece, out int[]? cached))
        {
            ids.AddRange((ReadOnlySpan<int>)cached);
            return;
        }
        Scratch s = Scratch.Get(piece.Length);
        int n = Encoding.UTF8.GetBytes(piece, s.Bytes); // a lone surrogate becomes EF BF BD
        int count = _ignoreMerges && WholeToken(s, n, out int whole) ? Single(s, whole) : Merge(s, n);
        int[] result = s.Result.AsSpan(0, count).ToArray();
        if (piece.Length < MaxCachedPieceLength && _cacheCount < CacheCapacity && _cache.TryAdd(piece.ToString(), result))
            Interlocked.Increment(ref _cacheCount);
        ids.AddRange((ReadOnlySpan<int>)result);
    }

    private bool WholeToken(Scratch s, int n, out int id)
    {
        Span<char> mapped = s.Chars.AsSpan(0, n);
        for (int i = 0; i < n; i++)
            mapped[i] = ByteLevel.ByteToChar[s.Bytes[i]];
        return _vocabBySpan.TryGetValue(mapped, out id);
    }

    private static int Single(Scratch s, int id)
    {
        s.Result[0] = id;
        return 1;
    }

    // word.rs merge_all: symbols as a doubly linked list over the initial byte symbols; the queue holds
    // (rank, position, merged id), smallest (rank, position) first.
    private int Merge(Scratch s, int n)
    {
        int[] sym = s.Symbols, prev = s.Prev, next = s.Next;
        int count = 0;
        for (int i = 0; i < n; i++)
        {
            int id = _byteIds[s.Bytes[i]];
            if (id < 0)
                continue; // no unk token and no byte fallback: HF skips a char it cannot look up
            sym[count] = id;
            prev[count] = count - 1;
            next[count] = count + 1;
            count++;
        }
        if (count == 0)
            return 0;
        next[count - 1] = -1;

        var queue = new MergeQueue(s);
        for (int i = 0; i + 1 < count; i++)
        {
            if (_merges.TryGetValue(Key(sym[i], sym[i + 1]), out long m))
                queue.Push((int)(m >> 32), i, (int)m);
        }

        bool[] removed = s.Removed;
        Array.Clear(removed, 0, count);
        while (queue.TryPop(out int rank, out int pos, out int newId))
        {
            if (removed[pos] || next[pos] == -1)
                continue;
            int right = next[pos];
            // a stale entry: the pair at pos changed since it was queued
            if (!_merges.TryGetValue(Key(sym[pos], sym[right]), out long current) || (int)current != newId)
                continue;

            sym[pos] = newId;
            next[pos] = next[right];
            removed[right] = true;
            if (next[right] != -1)
                prev[next[right]] = pos;

            if (prev[pos] >= 0 && _merges.TryGetValue(Key(sym[prev[pos]], newId), out long mp))
                queue.Push((int)(mp >> 32), prev[pos], (int)mp);
            if (next[pos] != -1 && _merges.TryGetValue(Key(newId, sym[next[pos]]), out long mn))
                queue.Push((int)(mn >> 32), pos, (int)mn);
        }

        int k = 0;
        for (int i = 0; i != -1; i = next[i])
            s.Result[k++] = sym[i];
        return k;
    }

    /// <summary>Hashes a (left, right) id pair: long.GetHashCode would be left ^ right, 17 bits for a 128K vocabulary
    /// and long chains of colliding pairs (12x slower merging); a multiplicative hash spreads them.</summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long key) => (int)((ulong)(key * -7046029254386353131L) >> 32);
    }

    /// <summary>Binary min-heap of (rank, position) keys with the merged id alongside.</summary>
    private ref struct MergeQueue(Scratch s)
    {
        private readonly long[] _keys = s.HeapKeys;
        private readonly int[] _ids = s.HeapIds;
        private int _count;

        public void Push(int rank, int pos, int newId)
        {
            long key = ((long)rank << 32) | (uint)pos;
            int i = _count++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (_keys[parent] <= key)
                    break;
                _keys[i] = _keys[parent];
                _ids[i] = _ids[parent];
                i = parent;
            }
            _keys[i] = key;
            _ids[i] = newId;
        }

        public bool TryPop(out int rank, out int pos, out int newId)
        {
            if (_count == 0)
            {
                rank = pos = newId = 0;
                return false;
            }
            long top = _keys[0];
            newId = _ids[0];
            rank = (int)(top >> 32);
            pos = (int)top;
            _count--;
            if (_count > 0)
            {
                long key = _keys[_count];
                int id = _ids[_count];
                int i = 0;
                while (true)
                {
                    int child = 2 * i + 1;
                    if (child >= _count)
                        break;
                    if (child + 1 < _count && _keys[child + 1] < _keys[child])
                        child++;
                    if (_keys[child] >= key)
                        break;
                    _keys[i] = _keys[child];
                    _ids[i] = _ids[child];
                    i = child;
                }
                _keys[i] = key;
                _ids[i] = id;
            }
            return true;
        }
    }

    /// <summary>Per-thread buffers sized for the longest piece seen so far.</summary>
    private sealed class Scratch
    {
        [ThreadStatic]
        private static Scratch? t_current;

        public byte[] Bytes = [];
        public char[] Chars = [];
        public int[] Symbols = [], Prev = [], Next = [], Result = [], HeapIds = [];
        public long[] HeapKeys = [];
        public bool[] Removed = [];

        private const int MaxKeptLength = 1 << 14; // longer pieces get buffers that are not kept afterwards

        public static Scratch Get(int utf16Length)
        {
            Scratch s = utf16Length > MaxKeptLength ? new Scratch() : t_current ??= new Scratch();
            int bytes = Encoding.UTF8.GetMaxByteCount(utf16Length);
            if (s.Bytes.Length < bytes)
            {
                int n = Math.Max(bytes, 2 * s.Bytes.Length);
                s.Bytes = new byte[n];
                s.Chars = new char[n];
                s.Symbols = new int[n];
                s.Prev = new int[n];
                s.Next = new int[n];
                s.Result = new int[n];
                s.Removed = new bool[n];
                // every merge pushes at most two entries, on top of the n - 1 initial pairs
                s.HeapKeys = new long[3 * n];
                s.HeapIds = new int[3 * n];
            }
            return s;
        }
    }
}
