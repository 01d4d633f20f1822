// Autoregressive generation over the latent KV cache (docs/design.md seam 2: every call is a batch of token slots).
//   prefill: the prompt in chunks of PrefillChunkTokens slots of one sequence, logits for the last slot only;
//            the cached prefix shared with the previous call is reused, not recomputed;
//   decode:  one slot per step (or, batched, one slot per live sequence), sample, detokenize, check stops.
//   MTP speculative decoding (DeepSeek-V3 report §2.2, used as in vLLM / SGLang's EAGLE-style MTP): with the
//   main cache holding positions 0..N-1 and the sampled token x at N, the MTP module takes (x, h[N-1]) and
//   drafts d greedily; one main forward over [x, d] at N, N+1 gives the target logits of N+1 and N+2. The token
//   sampled at N+1 is kept either way; if it equals d the one at N+2 is kept too, else d's cache entry is
//   truncated. Each kept token is a draw from the main model's own distribution given the kept prefix, so
//   greedy output equals plain decoding exactly. The module's own cache trails the main one: its entry i pairs
//   h[i] with token i+1, so it is filled for positions [mtpLength, N) just before each draft. Whether a step drafts
//   is the SpeculationPolicy's call (measured step costs and acceptance); plain steps in between keep their hidden
//   states pending so the module catches up at the next draft, and a model where drafts cannot pay stops drafting.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using SharpSeek.Model;
using SharpSeek.Model.Layers;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference;

/// <summary>
/// Generates tokens from a loaded model: chunked prefill, cached decoding, sampling, stop tokens and strings,
/// streaming text, optional MTP speculative decoding, and a batched path. Keeps one sequence's cache between calls,
/// so a prompt that extends the previous conversation only computes its new tokens. One call at a time
/// (a second concurrent call throws <see cref="InvalidOperationException"/>); create one generator per thread.
/// </summary>
public sealed class Generator
{
    private const int MtpRowsPerCall = 32; // bounds the MTP logits buffer [rows, V] during prefill
    private readonly List<int> _cached = [];
    private readonly KvCache[] _caches;
    private readonly int[] _eosIds;
    private TokenSlot[] _slots = new TokenSlot[2];
    private int[] _rows = new int[2];
    private float[] _logits;                // [2, V]: last prefill row, or the two verify rows
    private float[] _hidden = [];           // [chunk, H] post-norm hidden of the prefill chunk
    private float[] _pending = [];          // [rows, H] main hidden of positions [MtpLength, N) not yet fed to MTP
    private float[] _mtpLogits = [];        // [1, V] the draft's logits
    private float[] _mtpHidden = [];        // [rows, H] the module's output states; row 0 feeds the next recursive draft
    private int[] _drafts = [];             // the step's drafts
    private readonly List<GenerationUpdate> _stepUpdates = []; // a speculative step's tokens, yielded once the caches agree
    private SpeculationPolicy _shapePolicy; // the policy the constructor made from the model's shape (1 draft a step)
    private int _busy;

    /// <summary>Creates a generator over <paramref name="model"/>; <paramref name="tokenizer"/> (optional) gives text
    /// deltas, stop strings and its EOS token; <paramref name="contextLength"/> (optional) limits prompt plus output
    /// below <c>max_position_embeddings</c> (the length the model was trained on).</summary>
    public Generator(Transformer model, BpeTokenizer? tokenizer = null, CacheType cacheType = CacheType.F32, int? contextLength = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (contextLength is < 2)
            throw new ArgumentOutOfRangeException(nameof(contextLength), $"context length must be at least 2, got {contextLength}");
        ContextLength = Math.Min(model.Config.MaxPositionEmbeddings, contextLength ?? int.MaxValue);
        Model = model;
        Tokenizer = tokenizer;
        CacheType = cacheType;
        Cache = model.CreateCache(cacheType);
        _caches = [Cache];
        ModelConfig c = model.Config;
        _eosIds = tokenizer?.EosId is int eos ? [.. c.EosTokenIds, eos] : c.EosTokenIds;
        _logits = new float[2 * c.VocabSize];
        Speculation = _shapePolicy = SpeculationPolicy.For(model);
    }

    /// <summary>The model run.</summary>
    public Transformer Model { get; }

    /// <summary>When speculative generation drafts: step costs measured on this generator's model, acceptance per sequence.</summary>
    public SpeculationPolicy Speculation { get; set; }

    /// <summary>The tokenizer, or null (then updates carry ids only).</summary>
    public BpeTokenizer? Tokenizer { get; }

    /// <summary>Element type of the caches.</summary>
    public CacheType CacheType { get; }

    /// <summary>The cache of the single-sequence path, kept between calls.</summary>
    public KvCache Cache { get; }

    /// <summary>The tokens whose entries are in <see cref="Cache"/>, in order.</summary>
    public IReadOnlyList<int> CachedTokens => _cached;

    /// <summary>EOS ids that stop generation: config.json's, then the tokenizer's.</summary>
    public IReadOnlyList<int> EosTokenIds => _eosIds;

    /// <summary>Positions generation uses: <c>max_position_embeddings</c>, or less when the model records the length it
    /// was trained on (<see cref="ModelSession.ContextLength"/>); prompt plus output must fit, and output stops there
    /// with <see cref="FinishReason.Length"/>.</summary>
    public int ContextLength { get; }

    /// <summary>Counts and timings of the last finished or stopped single-sequence call.</summary>
    public GenerationStats LastStats { get; private set; } = new();

    /// <summary>Empties the cache (the next call recomputes its whole prompt).</summary>
    public void Reset()
    {
        Cache.Clear();
        _cached.Clear();
    }

    /// <summary>Encodes text with the tokenizer (special tokens written in the text are recognised).</summary>
    /// <exception cref="InvalidOperationException">The generator has no tokenizer.</exception>
    public int[] Encode(string text) =>
        (Tokenizer ?? throw new InvalidOperationException("this generator has no tokenizer")).Encode(text);

    /// <summary>Generates to the end and returns tokens, text, finish reason and counts.</summary>
    public GenerationResult Generate(IReadOnlyList<int> prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        SequenceState? state = null;
        foreach (GenerationUpdate _ in Run(prompt, options ?? new(), collectText: true, s => state = s, cancellationToken))
        {
        }
        return new GenerationResult
        {
            Tokens = state!.Output,
            Text = state.Text,
            FinishReason = state.Finish!.Value,
            StopString = state.StopString,
            Stats = LastStats,
        };
    }

    /// <summary>Streams one update per generated token; the last carries the finish reason. Cancellation is checked
    /// between tokens and between prefill chunks (<see cref="OperationCanceledException"/>).</summary>
    public IEnumerable<GenerationUpdate> Stream(IReadOnlyList<int> prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        Run(prompt, options ?? new(), collectText: false, null, cancellationToken);

    /// <summary>As <see cref="Stream"/>, asynchronously: the first step runs on the thread pool, and each
    /// <c>MoveNextAsync</c> computes one decode step (a CPU-bound forward pass) before it completes.</summary>
    public async IAsyncEnumerable<GenerationUpdate> StreamAsync(IReadOnlyList<int> prompt, GenerationOptions? options = null,
                                                                [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        await Task.Yield();
        foreach (GenerationUpdate u in Run(prompt, options ?? new(), collectText: false, null, cancellationToken))
            yield return u;
    }

    private IEnumerable<GenerationUpdate> Run(IReadOnlyList<int> prompt, GenerationOptions o, bool collectText,
                                              Action<SequenceState>? onStart, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return RunCore(Validated(prompt, o), o, collectText, onStart, ct);
    }

    private int[] Validated(IReadOnlyList<int> prompt, GenerationOptions o)
    {
        o.Validate();
        if (prompt.Count == 0)
            throw new ArgumentException("the prompt is empty: give at least one token (for example BOS)");
        if (prompt.Count >= ContextLength)
            throw new ArgumentException($"the prompt has {prompt.Count} tokens; the model's context is {ContextLength}");
        if (o.StopStrings.Count > 0 && Tokenizer is null)
            throw new ArgumentException("stop strings need a tokenizer");
        var ids = prompt.ToArray();
        int V = Model.Config.VocabSize;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)V)
                throw new ArgumentException($"prompt token {id} outside the vocabulary of {V}");
        }
        return ids;
    }

    private IEnumerable<GenerationUpdate> RunCore(int[] prompt, GenerationOptions o, bool collectText,
                                                  Action<SequenceState>? onStart, CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _busy, 1) != 0)
            throw new InvalidOperationException("this generator is already generating; use one generator per concurrent sequence");
        SequenceState? started = null;
        Func<GenerationStats>? stats = null;
        try
        {
            ModelConfig c = Model.Config;
            int V = c.VocabSize, H = c.HiddenSize, maxPos = ContextLength;
            if (o.Speculative && c.NumNextnPredictLayers == 0)
                throw new NotSupportedException("speculative decoding needs a multi-token-prediction module; this model has none");
            int k = o.SpeculativeTokens;
            if (o.Speculative && ReferenceEquals(Speculation, _shapePolicy) && _shapePolicy.PriorDrafts != k)
                Speculation = _shapePolicy = SpeculationPolicy.For(Model, k); // the shape's prediction for k drafts a step
            SpeculationPolicy policy = Speculation;
            policy.StartSequence();
            bool spec = o.Speculative && !policy.NeverSpeculate;
            var state = new SequenceState(V, prompt, o, o.Sampling, Tokenizer, _eosIds, collectText);
            started = state;
            onStart?.Invoke(state);
            var clock = Stopwatch.StartNew();
            int reused = Prefill(prompt, o, spec, ct);
            double prefillSeconds = clock.Elapsed.TotalSeconds;
            int drafted = 0, accepted = 0, plainSteps = 0, specSteps = 0;
            stats = () => new GenerationStats
            {
                PromptTokens = prompt.Length,
                CachedPromptTokens = reused,
                CompletionTokens = state.Output.Count,
                DraftTokens = drafted,
                AcceptedDraftTokens = accepted,
                SpeculativeSteps = specSteps,
                PrefillSeconds = prefillSeconds,
                DecodeSeconds = clock.Elapsed.TotalSeconds - prefillSeconds,
                PlainSteps = o.Speculative ? plainSteps : 0,
                PlainStepSeconds = o.Speculative ? policy.PlainSeconds : double.NaN,
                SpeculativeStepSeconds = o.Speculative ? policy.SpeculativeSeconds : double.NaN,
                PredictedSpeedup = o.Speculative ? policy.PredictedSpeedup : double.NaN,
                SpeculationStopped = o.Speculative && policy.NeverSpeculate,
                PriorCostRatio = o.Speculative ? policy.PriorCostRatio : double.NaN,
            };

            GenerationUpdate u = state.SampleAndTake(_logits.AsSpan(0, V), Cache.Length >= maxPos);
            int x = u.Token;
            if (u.FinishReason is not null)
                LastStats = stats();
            yield return u;
            bool synced = spec; // the MTP cache and _pending cover [MtpLength, N)
            while (state.Finish is null)
            {
                ct.ThrowIfCancellationRequested();
                int N = Cache.Length;
                synced &= !policy.NeverSpeculate;
                if (synced && o.MaxTokens - state.Output.Count >= 2 && N + 1 < maxPos && policy.ShouldSpeculate())
                {
                    // k drafts at N+1..N+k (fewer near the budget or the context end), one forward over [x, drafts]
                    // at N..N+k; row j's token is kept, and row j+1 read, while it equals draft j
                    long t0 = Stopwatch.GetTimestamp();
                    int kk = Math.Min(k, Math.Min(o.MaxTokens - state.Output.Count - 1, maxPos - 1 - N));
                    ReadOnlySpan<int> drafts = Draft(x, kk);
                    Verify(x, drafts);
                    _stepUpdates.Clear();
                    int kept = 0; // drafts whose cache entries stay
                    for (int j = 0; ; j++)
                    {
                        u = state.SampleAndTake(_logits.AsSpan(j * V, V), N + 1 + j >= maxPos);
                        _stepUpdates.Add(u);
                        bool agrees = j < kk && u.Token == drafts[j];
                        if (agrees)
                            kept++;
                        if (!agrees || u.FinishReason is not null)
                            break;
                    }
                    x = u.Token;
                    // the main cache keeps x and the agreeing drafts; the module's cache drops its recursive entries
                    // (their hidden states were its own) and the main model's states of the kept positions wait for it
                    Cache.Truncate(N + 1 + kept);
                    _cached.RemoveRange(N + 1 + kept, kk - kept);
                    Cache.TruncateLayer(c.NumHiddenLayers, N);
                    _hidden.AsSpan(0, (1 + kept) * H).CopyTo(Grown(ref _pending, (1 + kept) * H));
                    drafted += kk;
                    accepted += kept;
                    specSteps++;
                    policy.RecordSpeculative(Stopwatch.GetElapsedTime(t0).TotalSeconds, kept, kk);
                    for (int i = 0; i < _stepUpdates.Count; i++)
                    {
                        GenerationUpdate su = _stepUpdates[i];
                        if (su.FinishReason is not null)
                            LastStats = stats();
                        yield return su;
                    }
                    continue;
                }
                else if (synced)
                {
                    // a plain step that keeps its hidden state pending, so the module can catch up at the next draft
                    long t0 = Stopwatch.GetTimestamp();
                    int m = MtpLength;
                    Feed(x, GrownKeeping(ref _pending, (N + 1 - m) * H).Slice((N - m) * H, H));
                    u = state.SampleAndTake(_logits.AsSpan(0, V), N + 1 >= maxPos);
                    x = u.Token;
                    plainSteps++;
                    policy.RecordPlain(Stopwatch.GetElapsedTime(t0).TotalSeconds);
                }
                else
                {
                    Feed(x, default);
                    u = state.SampleAndTake(_logits.AsSpan(0, V), N + 1 >= maxPos);
                    x = u.Token;
                    plainSteps++;
                }
                if (u.FinishReason is not null)
                    LastStats = stats();
                yield return u;
            }
        }
        finally
        {
            if (stats is not null && started?.Finish is null)
                LastStats = stats(); // stopped early: cancelled or abandoned
            Volatile.Write(ref _busy, 0);
        }
    }

    // Truncates the cache to the prefix it shares with the prompt and computes the rest of the prompt; leaves the
    // last position's logits in _logits[0..V) and, when speculative, its hidden state in _pending. Returns the reused count.
    private int Prefill(int[] prompt, GenerationOptions o, bool spec, CancellationToken ct)
    {
        ModelConfig c = Model.Config;
        int P = prompt.Length, H = c.HiddenSize, L = c.NumHiddenLayers;
        int common = 0;
        while (common < _cached.Count && common < P && _cached[common] == prompt[common])
            common++;
        // at least the last prompt token is recomputed (its logits); MTP entry i needs token i+1 unchanged and,
        // when speculative, the prefill must start where the module's cache ends
        int q = Math.Min(common, P - 1);
        int mtpKeep = Math.Min(q, Math.Max(0, common - 1));
        if (spec)
        {
            q = Math.Min(mtpKeep, MtpLength);
            mtpKeep = q;
        }
        Cache.Truncate(q);
        _cached.RemoveRange(q, _cached.Count - q);
        _cached.EnsureCapacity(Math.Min(P + o.MaxTokens + 1, ContextLength + 1));
        for (int l = L; l < Cache.Layers.Length; l++)
            Cache.TruncateLayer(l, mtpKeep);

        int chunk = o.PrefillChunkTokens;
        for (int a = q; a < P; a += chunk)
        {
            ct.ThrowIfCancellationRequested();
            int b = Math.Min(P, a + chunk), T = b - a;
            Span<TokenSlot> slots = Slots(T);
            for (int t = 0; t < T; t++)
                slots[t] = new TokenSlot(0, a + t, prompt[a + t]);
            Span<float> hidden = spec ? Grown(ref _hidden, T * H) : default;
            _rows[0] = T - 1;
            Model.Forward(slots, _caches, _rows.AsSpan(0, 1), _logits, hidden);
            _cached.AddRange(prompt.AsSpan(a, T));
            if (!spec)
                continue;
            // MTP entries a..min(b, P-1)-1: (token i+1, h[i]); the last position waits for the sampled token
            int end = Math.Min(b, P - 1);
            for (int i = a; i < end; i += MtpRowsPerCall)
            {
                int n = Math.Min(MtpRowsPerCall, end - i);
                Span<TokenSlot> ms = Slots(n);
                for (int t = 0; t < n; t++)
                    ms[t] = new TokenSlot(0, i + t, prompt[i + t + 1]);
                Model.ForwardMtp(0, ms, _caches, hidden.Slice((i - a) * H, n * H), logitRows: default, logits: default);
            }
            if (b == P)
                hidden.Slice((T - 1) * H, H).CopyTo(Grown(ref _pending, 2 * H));
        }
        return q;
    }

    // Length of the first MTP module's cache.
    private int MtpLength => Cache.Layers[Model.Config.NumHiddenLayers].Length;

    // Runs the MTP module on entries [MtpLength, N) (token i+1 and the pending hidden of i; token N is x), in calls of
    // at most MtpRowsPerCall rows: the greedy draft for position N+1 (the head runs for that row only). Each further
    // draft j (k > 1) runs the module once more at entry N-1+j on draft j-1 and the module's own last output state.
    private ReadOnlySpan<int> Draft(int x, int k)
    {
        int N = Cache.Length, m = MtpLength, H = Model.Config.HiddenSize, V = Model.Config.VocabSize;
        Debug.Assert(N > m);
        Span<float> logits = Grown(ref _mtpLogits, V);
        Span<float> state = Grown(ref _mtpHidden, MtpRowsPerCall * H);
        for (int a = m; a < N; a += MtpRowsPerCall)
        {
            int n = Math.Min(MtpRowsPerCall, N - a);
            Span<TokenSlot> slots = Slots(n);
            for (int t = 0; t < n; t++)
                slots[t] = new TokenSlot(0, a + t, a + t + 1 < N ? _cached[a + t + 1] : x);
            _rows[0] = n - 1;
            bool last = a + n == N;
            Model.ForwardMtp(0, slots, _caches, _pending.AsSpan((a - m) * H, n * H), _rows.AsSpan(0, last ? 1 : 0), logits,
                             last && k > 1 ? state.Slice(0, n * H) : default);
            if (last && k > 1 && n > 1)
                state.Slice((n - 1) * H, H).CopyTo(state);
        }
        if (_drafts.Length < k)
            _drafts = new int[k];
        _drafts[0] = Sampler.ArgMax(logits);
        for (int j = 1; j < k; j++)
        {
            Span<TokenSlot> slots = Slots(1);
            slots[0] = new TokenSlot(0, N - 1 + j, _drafts[j - 1]);
            _rows[0] = 0;
            Model.ForwardMtp(0, slots, _caches, state.Slice(0, H), _rows.AsSpan(0, 1), logits, state.Slice(0, H));
            _drafts[j] = Sampler.ArgMax(logits);
        }
        return _drafts.AsSpan(0, k);
    }

    // One main forward over [x at N, drafts at N+1..]: logits of every row into _logits, hidden states into _hidden.
    private void Verify(int x, ReadOnlySpan<int> drafts)
    {
        int N = Cache.Length, H = Model.Config.HiddenSize, n = drafts.Length + 1;
        Span<TokenSlot> slots = Slots(n);
        Span<int> rows = Rows(n);
        slots[0] = new TokenSlot(0, N, x);
        rows[0] = 0;
        for (int j = 1; j < n; j++)
        {
            slots[j] = new TokenSlot(0, N + j, drafts[j - 1]);
            rows[j] = j;
        }
        Model.Forward(slots, _caches, rows, Grown(ref _logits, n * Model.Config.VocabSize), Grown(ref _hidden, n * H));
        _cached.Add(x);
        foreach (int d in drafts)
            _cached.Add(d);
    }

    // One plain decode step: x at position N, logits into _logits[0..V), its hidden state into hidden (when given).
    private void Feed(int x, Span<float> hidden)
    {
        Span<TokenSlot> slots = Slots(1);
        slots[0] = new TokenSlot(0, Cache.Length, x);
        _rows[0] = 0;
        Model.Forward(slots, _caches, _rows.AsSpan(0, 1), _logits, hidden);
        _cached.Add(x);
    }

    /// <summary>
    /// Generates for several independent prompts together, continuously batched: at most
    /// <paramref name="maxConcurrent"/> sequences (all when 0) are in flight, and each step is one forward over the
    /// next token of every decoding sequence plus up to <see cref="GenerationOptions.PrefillChunkTokens"/> prompt
    /// tokens of sequences still reading their prompts; a finished sequence's place goes to the next prompt at once,
    /// so the batch stays full while completions end at different lengths. Each sequence gets its own cache (taken
    /// from a pool the generator keeps between calls; its own <see cref="Cache"/> is untouched) and, when
    /// <see cref="SamplingOptions.Seed"/> is set, the seed plus its index. Greedy results equal those of
    /// <see cref="Generate"/> one prompt at a time. <paramref name="finished"/>, when given, gets each result (with
    /// the prompt's index) as soon as its sequence ends.
    /// </summary>
    public IReadOnlyList<GenerationResult> GenerateBatch(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions? options = null,
                                                         CancellationToken cancellationToken = default, int maxConcurrent = 0,
                                                         Action<int, GenerationResult>? finished = null)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentOutOfRangeException.ThrowIfNegative(maxConcurrent);
        GenerationOptions o = options ?? new();
        int B = prompts.Count;
        if (B == 0)
            return [];
        int limit = maxConcurrent == 0 ? B : Math.Min(maxConcurrent, B);
        var ids = new int[B][];
        for (int i = 0; i < B; i++)
            ids[i] = Validated(prompts[i] ?? throw new ArgumentNullException(nameof(prompts)), o);
        if (Interlocked.Exchange(ref _busy, 1) != 0) // the cache pools and the models' scratch serve one call at a time
            throw new InvalidOperationException("this generator is already generating; use one generator per concurrent sequence");
        try
        {
            var run = new BatchRun(ids, o, finished, cancellationToken);
            int lanes = Lanes.For(Model, limit, _batchLanes);
            while (_lanes.Count < lanes)
                _lanes.Add(new Lane(_lanes.Count == 0 ? Model : new Transformer(Model.Weights, Model.Backend)));
            if (lanes == 1)
            {
                RunLane(_lanes[0], limit, run);
            }
            else
            {
                // each lane takes its share of the places, on its own thread (the pool's threads: kernels inside a
                // lane run inline there), with its own model scratch, caches and steps
                Model.Backend.For(lanes, k => RunLane(_lanes[k], limit / lanes + (k < limit % lanes ? 1 : 0), run));
            }
            if (run.Error is { } e)
                ExceptionDispatchInfo.Capture(e).Throw();
            return run.Results;
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>
    /// Lanes <see cref="GenerateBatch"/> splits its places into (<see cref="Lanes"/>): 0 (the default) decides by the
    /// model and the number of places; 1 runs every sequence in one batch. A sequence's output does not depend on its lane.
    /// </summary>
    public int BatchLanes
    {
        get => _batchLanes;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _batchLanes = value;
        }
    }

    private int _batchLanes;
    private readonly List<Lane> _lanes = [];

    /// <summary>What the lanes of one <see cref="GenerateBatch"/> call share: the prompts, who takes the next one, the results.</summary>
    private sealed class BatchRun(int[][] ids, GenerationOptions options, Action<int, GenerationResult>? finished, CancellationToken cancel)
    {
        private readonly object _callback = new();
        private int _admitted = -1;
        private Exception? _error;

        public int[][] Ids { get; } = ids;
        public GenerationOptions Options { get; } = options;
        public CancellationToken Cancel { get; } = cancel;
        public GenerationResult[] Results { get; } = new GenerationResult[ids.Length];
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public Exception? Error => Volatile.Read(ref _error);

        /// <summary>The next prompt's index (prompts are taken in order), or -1 when all are taken or a lane failed.</summary>
        public int Claim()
        {
            if (Error is not null)
                return -1;
            int i = Interlocked.Increment(ref _admitted);
            return i < Ids.Length ? i : -1;
        }

        public void Fail(Exception e) => Interlocked.CompareExchange(ref _error, e, null);

        public void Finished(int i, GenerationResult r)
        {
            Results[i] = r;
            if (finished is not null)
            {
                lock (_callback) // the caller's callback: one result at a time, whichever lane ended it
                    finished(i, r);
            }
        }
    }

    /// <summary>One lane: its model (scratch buffers), the caches it keeps between calls, its logits.</summary>
    private sealed class Lane(Transformer model)
    {
        public Transformer Model { get; } = model;
        public Stack<KvCache> Pool { get; } = new();
        public float[] Logits = [];
    }

    // One lane of GenerateBatch: continuous batching of at most `limit` sequences, taking prompts from the run until
    // none is left. A fresh cache's blocks are native allocations that are zeroed, faulted in and later finalized
    // (a tenth of a small model's batched step), so the lane's caches go back to its pool.
    private void RunLane(Lane lane, int limit, BatchRun run)
    {
        GenerationOptions o = run.Options;
        int V = Model.Config.VocabSize, maxPos = ContextLength;
        int[][] ids = run.Ids;
        var active = new List<BatchSequence>(limit);
        var laneCaches = new List<KvCache>(limit); // the forward's cache list: slot.Sequence indexes the active list
        var slots = new List<TokenSlot>(limit + o.PrefillChunkTokens);
        var rows = new List<int>(limit);
        var rowSeq = new List<BatchSequence>(limit);
        bool more = true;
        try
        {
            while (true)
            {
                run.Cancel.ThrowIfCancellationRequested();
                if (run.Error is not null)
                    return;
                while (more && active.Count < limit)
                {
                    int i = run.Claim();
                    if (i < 0)
                    {
                        more = false;
                        break;
                    }
                    SamplingOptions s = o.Sampling.Seed is long seed ? o.Sampling with { Seed = seed + i } : o.Sampling;
                    active.Add(new BatchSequence(i, new SequenceState(V, ids[i], o, s, Tokenizer, _eosIds, collectText: true),
                                                 lane.Pool.TryPop(out KvCache? c) ? c : Model.CreateCache(CacheType), run.Clock.Elapsed.TotalSeconds));
                }
                if (active.Count == 0)
                    return;
                // the step: one token of each decoding sequence, then prompt tokens in admission order under the budget
                slots.Clear();
                rows.Clear();
                rowSeq.Clear();
                laneCaches.Clear();
                for (int a = 0; a < active.Count; a++)
                {
                    BatchSequence q = active[a];
                    laneCaches.Add(q.Cache);
                    if (q.Fed == ids[q.Index].Length)
                    {
                        rows.Add(slots.Count);
                        rowSeq.Add(q);
                        slots.Add(new TokenSlot(a, q.Cache.Length, q.Next));
                    }
                }
                int budget = o.PrefillChunkTokens;
                for (int a = 0; a < active.Count && budget > 0; a++)
                {
                    BatchSequence q = active[a];
                    int[] p = ids[q.Index];
                    if (q.Fed == p.Length)
                        continue;
                    int n = Math.Min(budget, p.Length - q.Fed);
                    for (int k = 0; k < n; k++)
                        slots.Add(new TokenSlot(a, q.Fed + k, p[q.Fed + k]));
                    q.Fed += n;
                    budget -= n;
                    if (q.Fed == p.Length)
                    {
                        rows.Add(slots.Count - 1);
                        rowSeq.Add(q);
                    }
                }
                Span<float> logits = Grown(ref lane.Logits, Math.Max(rows.Count, 1) * V);
                if (rows.Count == 0)
                    rows.Add(slots.Count - 1); // a step of prompt tokens only: Forward wants a row; unused
                lane.Model.Forward(CollectionsMarshal.AsSpan(slots), laneCaches, CollectionsMarshal.AsSpan(rows), logits);
                double now = run.Clock.Elapsed.TotalSeconds;
                bool anyFinished = false;
                for (int r = 0; r < rowSeq.Count; r++)
                {
                    BatchSequence q = rowSeq[r];
                    SequenceState st = q.State;
                    if (st.Output.Count == 0)
                        q.FirstToken = now;
                    q.Next = st.SampleAndTake(logits.Slice(r * V, V), q.Cache.Length >= maxPos).Token;
                    if (st.Finish is null)
                        continue;
                    var result = new GenerationResult
                    {
                        Tokens = st.Output,
                        Text = st.Text,
                        FinishReason = st.Finish.Value,
                        StopString = st.StopString,
                        Stats = new GenerationStats
                        {
                            PromptTokens = ids[q.Index].Length,
                            CompletionTokens = st.Output.Count,
                            PrefillSeconds = q.FirstToken - q.Started,
                            DecodeSeconds = now - q.FirstToken,
                        },
                    };
                    ReturnBatchCache(lane, q.Cache);
                    q.Done = true;
                    anyFinished = true;
                    run.Finished(q.Index, result);
                }
                if (anyFinished)
                    active.RemoveAll(q => q.Done);
            }
        }
        catch (Exception e)
        {
            run.Fail(e);
        }
        finally
        {
            foreach (BatchSequence q in active)
            {
                if (!q.Done)
                    ReturnBatchCache(lane, q.Cache);
            }
            while (lane.Pool.Count > limit) // keep what this call's concurrency needed, no more
                lane.Pool.Pop();
        }
    }

    /// <summary>A sequence in flight in a lane: its prompt index, state and cache, prompt tokens fed, the token to feed
    /// next, and its times (seconds from the call's start).</summary>
    private sealed class BatchSequence(int index, SequenceState state, KvCache cache, double started)
    {
        public int Index { get; } = index;
        public SequenceState State { get; } = state;
        public KvCache Cache { get; } = cache;
        public double Started { get; } = started;
        public int Fed;
        public int Next;
        public double FirstToken;
        public bool Done;
    }

    private static void ReturnBatchCache(Lane lane, KvCache c)
    {
        c.Clear();
        lane.Pool.Push(c);
    }

    private Span<TokenSlot> Slots(int n)
    {
        if (_slots.Length < n)
            _slots = new TokenSlot[n];
        if (_rows.Length < 2)
            _rows = new int[2];
        return _slots.AsSpan(0, n);
    }

    private Span<int> Rows(int n)
    {
        if (_rows.Length < n)
            _rows = new int[n];
        return _rows.AsSpan(0, n);
    }

    // as Grown, keeping the contents (amortized doubling)
    private static Span<float> GrownKeeping(ref float[] a, int n)
    {
        if (a.Length < n)
            Array.Resize(ref a, Math.Max(n, 2 * a.Length));
        return a.AsSpan(0, n);
    }

    private static Span<float> Grown(ref float[] a, int n)
    {
        if (a.Length < n)
            a = new float[n];
        return a.AsSpan(0, n);
    }
}
