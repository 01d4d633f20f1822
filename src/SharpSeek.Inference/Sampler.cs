// Next-token sampling. The steps run in the order of Hugging Face transformers' logits processors and vLLM:
//   1. penalties on the raw logits: repetition (CTRL, arXiv:1909.05858; llama.cpp repeat_penalty) for tokens
//      seen in the prompt or output: l > 0 ? l / r : l * r; then OpenAI's presence and frequency penalties
//      for generated tokens: l -= presence + count * frequency;
//   2. temperature 0 (or top-k 1): argmax, first index on ties, no random draw;
//   3. w = exp((l - max) / T), the softmax numerators (max-subtraction keeps exp in range, w_max = 1);
//   4. top-k, then top-p on the renormalized top-k distribution, then min-p (w >= min_p * w_max);
//   5. one uniform draw from xoshiro256** over what is left, renormalized.
// Truncation never sorts the whole vocabulary: the tokens with w >= tau are gathered, with tau lowered until they
// must hold every token a filter keeps (k of them, mass >= top_p, or tau <= min_p), and only those are sorted.
// The token history is three vocabulary-sized arrays; the draw's three are allocated at the first draw that needs
// them (greedy decoding without penalties needs none). A draw allocates nothing after the first.
using System.Numerics.Tensors;

namespace SharpSeek.Inference;

/// <summary>
/// Picks tokens from logits under <see cref="SamplingOptions"/> and keeps the token history the penalties need.
/// One sampler per sequence; not thread-safe.
/// </summary>
public sealed class Sampler
{
    private float[]? _work;   // [V] penalized logits, then softmax numerators
    private float[]? _keys;   // [V] candidate sort keys (-w)
    private int[]? _ids;      // [V] candidate token ids
    private readonly int[] _counts;   // [V] times each token was generated
    private readonly bool[] _seen;    // [V] token in the prompt or the output
    private readonly int[] _touched;  // distinct ids with _seen set, in first-seen order
    private int _touchedCount;
    private Xoshiro256 _rng;

    /// <summary>Creates a sampler for a vocabulary of <paramref name="vocabSize"/> logits.</summary>
    /// <param name="options">Penalties, temperature, truncation, seed.</param>
    /// <param name="vocabSize">Logits per draw (the model's vocabulary).</param>
    /// <param name="drawableTokens">Ids from this one up are never drawn: a model's vocabulary padded beyond its
    /// tokenizer's (DeepSeek-V3's 129,280 rows for 128,815 tokens) has rows no text belongs to. 0: all are drawable.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public Sampler(SamplingOptions options, int vocabSize, int drawableTokens = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(drawableTokens);
        options.Validate();
        Options = options;
        VocabSize = vocabSize;
        DrawableTokens = drawableTokens == 0 ? vocabSize : Math.Min(drawableTokens, vocabSize);
        _counts = new int[vocabSize];
        _seen = new bool[vocabSize];
        _touched = new int[vocabSize];
        Seed = options.Seed is long s ? (ulong)s : (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue);
        _rng = new Xoshiro256(Seed);
    }

    private bool HasPenalties => Options.RepetitionPenalty != 1f || Options.PresencePenalty != 0f || Options.FrequencyPenalty != 0f;

    /// <summary>The options in force.</summary>
    public SamplingOptions Options { get; }

    /// <summary>Number of logits per draw.</summary>
    public int VocabSize { get; }

    /// <summary>Ids below this one can be drawn (<see cref="VocabSize"/> unless the constructor limited it).</summary>
    public int DrawableTokens { get; }

    /// <summary>The seed in use (<see cref="SamplingOptions.Seed"/>, or the one drawn when it is null).</summary>
    public ulong Seed { get; }

    /// <summary>Forgets the token history and restarts the random sequence from <see cref="Seed"/>.</summary>
    public void Reset()
    {
        for (int i = 0; i < _touchedCount; i++)
        {
            _seen[_touched[i]] = false;
            _counts[_touched[i]] = 0;
        }
        _touchedCount = 0;
        _rng = new Xoshiro256(Seed);
    }

    /// <summary>Records prompt tokens: they count for the repetition penalty, not for presence or frequency.</summary>
    public void AddPrompt(ReadOnlySpan<int> tokens)
    {
        foreach (int t in tokens)
            See(t);
    }

    /// <summary>Records a generated token for all three penalties.</summary>
    public void Accept(int token)
    {
        See(token);
        _counts[token]++;
    }

    /// <summary>How many times <paramref name="token"/> was passed to <see cref="Accept"/>.</summary>
    public int GeneratedCount(int token) => _counts[token];

    /// <summary>Applies the repetition, presence and frequency penalties to <paramref name="logits"/> in place.</summary>
    public void ApplyPenalties(Span<float> logits)
    {
        if (logits.Length != VocabSize)
            throw new ArgumentException($"expected {VocabSize} logits, got {logits.Length}", nameof(logits));
        float rep = Options.RepetitionPenalty, presence = Options.PresencePenalty, frequency = Options.FrequencyPenalty;
        if (rep == 1f && presence == 0f && frequency == 0f)
            return;
        for (int i = 0; i < _touchedCount; i++)
        {
            int id = _touched[i];
            float l = logits[id];
            if (rep != 1f)
                l = l > 0 ? l / rep : l * rep;
            int c = _counts[id];
            if (c > 0)
                l -= presence + c * frequency;
            logits[id] = l;
        }
    }

    /// <summary>
    /// Chooses the next token from <paramref name="logits"/> [V] (left unchanged). Does not record it: call
    /// <see cref="Accept"/> with the token that is kept.
    /// </summary>
    public int Sample(ReadOnlySpan<float> logits)
    {
        if (Options.IsGreedy && !HasPenalties)
        {
            if (logits.Length != VocabSize)
                throw new ArgumentException($"expected {VocabSize} logits, got {logits.Length}", nameof(logits));
            return ArgMax(logits.Slice(0, DrawableTokens)); // what the general path finds, without copying the logits
        }
        int n = Truncate(logits, sortAll: false);
        if (n == 0)
            return ArgMax(_work!);
        if (n < 0)
            return Draw(_work!);
        return DrawSorted(_keys!.AsSpan(0, n), _ids!.AsSpan(0, n));
    }

    /// <summary>
    /// The distribution <see cref="Sample"/> draws from: the tokens left after penalties, temperature and truncation,
    /// most likely first, with their renormalized probabilities (greedy: the argmax with probability 1).
    /// Returns how many entries of <paramref name="ids"/> and <paramref name="probs"/> (each at least V long) are set.
    /// </summary>
    public int Distribution(ReadOnlySpan<float> logits, Span<int> ids, Span<float> probs)
    {
        if (ids.Length < VocabSize || probs.Length < VocabSize)
            throw new ArgumentException($"ids and probs need {VocabSize} entries");
        int n = Truncate(logits, sortAll: true);
        if (n == 0)
        {
            ids[0] = ArgMax(_work!);
            probs[0] = 1f;
            return 1;
        }
        double total = 0;
        for (int i = 0; i < n; i++)
            total -= _keys![i];
        for (int i = 0; i < n; i++)
        {
            ids[i] = _ids![i];
            probs[i] = (float)(-_keys![i] / total);
        }
        return n;
    }

    // Penalties, then greedy (returns 0, argmax of _work), no truncation (returns -1, numerators in _work, unless
    // sortAll), or the kept tokens sorted in _keys (-w) and _ids (returns their count).
    private int Truncate(ReadOnlySpan<float> logits, bool sortAll)
    {
        if (logits.Length != VocabSize)
            throw new ArgumentException($"expected {VocabSize} logits, got {logits.Length}", nameof(logits));
        _work ??= new float[VocabSize];
        _keys ??= new float[VocabSize];
        _ids ??= new int[VocabSize];
        Span<float> w = _work;
        logits.CopyTo(w);
        ApplyPenalties(w);
        if (DrawableTokens < VocabSize)
            w[DrawableTokens..].Fill(float.NegativeInfinity); // weight exp(-inf) = 0, never the argmax
        if (Options.IsGreedy)
            return 0;

        // softmax numerators, w_max = 1
        float max = TensorPrimitives.Max(w);
        TensorPrimitives.Subtract(w, max, w);
        TensorPrimitives.Multiply(w, 1f / Options.Temperature, w);
        TensorPrimitives.Exp(w, w);

        int k = Options.TopK > 0 && Options.TopK < VocabSize ? Options.TopK : 0;
        float topP = Options.TopP, minP = Options.MinP;
        if (k == 0 && topP >= 1f && minP <= 0f && !sortAll)
            return -1;

        int n = Gather(w, k, topP, minP, out double total);
        Span<float> keys = _keys.AsSpan(0, n);
        Span<int> ids = _ids.AsSpan(0, n);
        keys.Sort(ids); // ascending -w: most likely first
        if (k > 0)
            n = Math.Min(n, k);
        if (topP < 1f)
        {
            // top-p over the top-k distribution when top-k is on (then n >= k), else over the whole vocabulary
            double mass = total;
            if (k > 0)
            {
                mass = 0;
                for (int i = 0; i < n; i++)
                    mass -= keys[i];
            }
            double target = topP * mass, cum = 0;
            for (int i = 0; i < n; i++)
            {
                cum -= keys[i];
                if (cum >= target)
                {
                    n = i + 1;
                    break;
                }
            }
        }
        if (minP > 0f)
        {
            float floor = minP * -keys[0];
            int m = 1;
            while (m < n && -keys[m] >= floor)
                m++;
            n = m;
        }
        return n;
    }

    /// <summary>Index of the largest value, the first on ties (NaN counts as smallest).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        float bestValue = float.NegativeInfinity;
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] > bestValue)
            {
                bestValue = values[i];
                best = i;
            }
        }
        return best;
    }

    // Gathers into _keys/_ids every token with w >= tau, lowering tau until the set must hold every token that the
    // filters together keep: all k of top-k (needed whenever top-p runs on the top-k distribution), a top-p mass, or
    // the whole min-p set. Each filter keeps a prefix of the tokens by w, so the intersection lies in the smallest.
    private int Gather(ReadOnlySpan<float> w, int k, float topP, float minP, out double total)
    {
        total = 0;
        if (topP < 1f)
        {
            for (int i = 0; i < w.Length; i++)
                total += w[i];
        }
        float tau = minP > 0f ? minP : k == 0 && topP >= 1f ? 0f : 1f / 1024;
        while (true)
        {
            int n = 0;
            double mass = 0;
            for (int i = 0; i < w.Length; i++)
            {
                if (w[i] >= tau)
                {
                    _keys![n] = -w[i];
                    _ids![n++] = i;
                    mass += w[i];
                }
            }
            bool enough = tau == 0f
                || (k > 0 && n >= k)
                || (k == 0 && topP < 1f && mass >= topP * total)
                || (minP > 0f && tau <= minP && (k == 0 || topP >= 1f));
            if (enough)
                return n;
            tau = tau < 1e-30f ? 0f : tau / 64;
        }
    }

    // one draw over all tokens in index order
    private int Draw(ReadOnlySpan<float> w)
    {
        double total = 0;
        for (int i = 0; i < w.Length; i++)
            total += w[i];
        double u = _rng.NextDouble() * total, cum = 0;
        int last = 0;
        for (int i = 0; i < w.Length; i++)
        {
            if (w[i] <= 0)
                continue;
            cum += w[i];
            last = i;
            if (u < cum)
                return i;
        }
        return last; // rounding left u at the very top
    }

    // one draw over sorted candidates, weights -keys
    private int DrawSorted(ReadOnlySpan<float> keys, ReadOnlySpan<int> ids)
    {
        double total = 0;
        foreach (float key in keys)
            total -= key;
        double u = _rng.NextDouble() * total, cum = 0;
        int last = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] >= 0)
                break; // weight 0 (sorted last): never drawn
            cum -= keys[i];
            last = i;
            if (u < cum)
                return ids[i];
        }
        return ids[last]; // rounding left u at the very top
    }

    private void See(int token)
    {
        if ((uint)token >= (uint)VocabSize)
            throw new ArgumentOutOfRangeException(nameof(token), $"token id {token} outside the vocabulary of {VocabSize}");
        if (!_seen[token])
        {
            _seen[token] = true;
            _touched[_touchedCount++] = token;
        }
    }
}
