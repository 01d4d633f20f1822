// Continuous batching (Orca, OSDI '22; vLLM's and SGLang's schedulers): one loop owns the model, and each step is one
// Transformer.Forward over the token slots of every active sequence (docs/design.md seam 2): one decode slot per
// sequence that is generating, then prefill chunks of newly admitted sequences while the step's token budget lasts.
// Requests join and leave between steps; each samples with its own options (its own SequenceState: sampler, stop
// tokens and strings, detokenizer); a cancelled request is dropped at the next step.
//   exactness: a sequence's prefill is cut into chunks at the same positions as when it runs alone (every
//              PrefillChunkTokens from where its computation starts), so its attention takes the same form (naive or
//              absorbed, Mla.Forward chooses per sequence) whatever else shares the step; the rows of a batch are
//              independent, so greedy output equals the same request run alone (tested).
//   prefix reuse: finished sequences leave their latent cache in a PrefixCache (LRU under a byte budget); a new
//              request takes the entry sharing the longest prefix with its prompt and computes only the rest.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using SharpSeek.Model;
using SharpSeek.Model.Layers;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference;

/// <summary>How a <see cref="BatchScheduler"/> batches (one options object per concern, docs/design.md seam 7).</summary>
public sealed record BatchSchedulerOptions
{
    /// <summary>Most sequences generating at once; more wait in the queue. Default 16.</summary>
    public int MaxParallel { get; init; } = 16;

    /// <summary>Most requests waiting for a place; a request beyond that is refused with
    /// <see cref="SchedulerFullException"/>. Default 256.</summary>
    public int MaxQueue { get; init; } = 256;

    /// <summary>Token slots per step: decode slots first, then prefill chunks while they fit (at least one chunk per
    /// step, so prefill never starves). Default 512.</summary>
    public int MaxStepTokens { get; init; } = 512;

    /// <summary>Prompt tokens per prefill chunk of one sequence. Default 256 (as <see cref="GenerationOptions.PrefillChunkTokens"/>).</summary>
    public int PrefillChunkTokens { get; init; } = 256;

    /// <summary>Positions a sequence may use (prompt plus output); 0 uses the model's <c>max_position_embeddings</c>.</summary>
    public int ContextLength { get; init; }

    /// <summary>Bytes of latent caches of finished requests kept for prefix reuse; 0 disables reuse. Default 256 MiB.</summary>
    public long PrefixCacheBytes { get; init; } = 256L << 20;

    /// <summary>Element type of the latent caches.</summary>
    public CacheType CacheType { get; init; } = CacheType.F32;

    /// <summary>Lanes a step's sequences are split into, each lane's forward on its own thread (<see cref="SharpSeek.Inference.Lanes"/>);
    /// 0 (the default) decides per step by the model and the number of sequences, 1 runs each step as one forward.</summary>
    public int Lanes { get; init; }

    /// <summary>Called on the scheduler's thread after each step (metrics); must be quick and must not throw.</summary>
    public Action<BatchStep>? StepCompleted { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        if (MaxParallel < 1)
            throw new ArgumentException($"max parallel sequences must be >= 1, got {MaxParallel}");
        if (MaxQueue < 0)
            throw new ArgumentException($"max queue must be >= 0, got {MaxQueue}");
        if (PrefillChunkTokens < 1)
            throw new ArgumentException($"prefill chunk must be >= 1 token, got {PrefillChunkTokens}");
        if (MaxStepTokens < 1)
            throw new ArgumentException($"step token budget must be >= 1, got {MaxStepTokens}");
        if (ContextLength < 0)
            throw new ArgumentException($"context length must be >= 0, got {ContextLength}");
        if (PrefixCacheBytes < 0)
            throw new ArgumentException($"prefix cache bytes must be >= 0, got {PrefixCacheBytes}");
        if (Lanes < 0)
            throw new ArgumentException($"lanes must be >= 0, got {Lanes}");
    }
}

/// <summary>What one scheduler step ran.</summary>
/// <param name="Sequences">Sequences in the forward pass.</param>
/// <param name="DecodeSlots">Slots that decoded one token each.</param>
/// <param name="PrefillSlots">Prompt slots computed.</param>
/// <param name="Seconds">Wall time of the step (forward and sampling).</param>
/// <param name="ForwardSeconds">Wall time of the forward pass (with lanes, each lane's forward and the sampling of its rows).</param>
public readonly record struct BatchStep(int Sequences, int DecodeSlots, int PrefillSlots, double Seconds, double ForwardSeconds);

/// <summary>Counters of a <see cref="BatchScheduler"/> (a snapshot).</summary>
public sealed record BatchSchedulerStats
{
    /// <summary>Requests waiting for a place.</summary>
    public int Queued { get; init; }

    /// <summary>Sequences prefilling or decoding.</summary>
    public int Active { get; init; }

    /// <summary>Forward steps run.</summary>
    public long Steps { get; init; }

    /// <summary>Requests submitted, finished (stop or length), cancelled, failed.</summary>
    public long Submitted { get; init; }
    public long Finished { get; init; }
    public long Cancelled { get; init; }
    public long Failed { get; init; }

    /// <summary>Prompt tokens computed, prompt tokens reused from the prefix cache, tokens generated.</summary>
    public long PrefillTokens { get; init; }
    public long CachedTokens { get; init; }
    public long DecodeTokens { get; init; }

    /// <summary>Latent caches the scheduler holds (in use, in the prefix cache or free), held by the prefix cache, held empty for reuse.</summary>
    public int Caches { get; init; }
    public int PrefixEntries { get; init; }
    public int FreeCaches { get; init; }

    /// <summary>Bytes allocated by the caches the prefix cache holds.</summary>
    public long PrefixBytes { get; init; }

    /// <summary>Caches that are neither active, in the prefix cache nor free: 0 when nothing leaked.</summary>
    public int CachesUnaccounted => Caches - Active - PrefixEntries - FreeCaches;
}

/// <summary>The request queue is full (<see cref="BatchSchedulerOptions.MaxQueue"/>).</summary>
public sealed class SchedulerFullException(string message) : InvalidOperationException(message);

/// <summary>
/// Runs many generation requests on one model with continuous batching: every step is one forward pass over the
/// decode slots of the running sequences and prefill chunks of new ones. Thread-safe; <see cref="Submit"/> from any
/// thread. Greedy output of a request does not depend on what runs beside it.
/// </summary>
public sealed class BatchScheduler : IDisposable
{
    private readonly Transformer _model;
    private readonly BpeTokenizer? _tokenizer;
    private readonly int[] _eosIds;
    private readonly BatchSchedulerOptions _options;
    private readonly object _lock = new();
    private readonly LinkedList<Sequence> _queue = [];   // guarded by _lock
    private readonly List<Sequence> _active = [];        // the loop's own
    private readonly PrefixCache _prefix;
    private readonly Thread _thread;
    private readonly List<TokenSlot> _slots = [];
    private readonly List<int> _rows = [];
    private readonly List<Sequence> _rowSeq = [];
    private readonly List<KvCache> _caches = [];
    private readonly float[] _logits;
    private bool _stopping;
    private long _steps, _submitted, _finished, _cancelled, _failed, _prefillTokens, _cachedTokens, _decodeTokens;
    private int _activeCount;

    /// <summary>Creates the scheduler and starts its thread. The transformer must not be used elsewhere meanwhile.</summary>
    /// <param name="model">The model; the scheduler owns its scratch buffers from now on.</param>
    /// <param name="tokenizer">Gives text deltas, stop strings and the EOS token; null for ids only.</param>
    /// <param name="options">Batching options; null uses the defaults.</param>
    public BatchScheduler(Transformer model, BpeTokenizer? tokenizer = null, BatchSchedulerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _options = options ?? new BatchSchedulerOptions();
        _options.Validate();
        _model = model;
        _tokenizer = tokenizer;
        ModelConfig c = model.Config;
        _eosIds = tokenizer?.EosId is int eos ? [.. c.EosTokenIds, eos] : c.EosTokenIds;
        ContextLength = _options.ContextLength == 0 ? c.MaxPositionEmbeddings : Math.Min(_options.ContextLength, c.MaxPositionEmbeddings);
        _logits = new float[(long)_options.MaxParallel * c.VocabSize];
        _prefix = new PrefixCache(model, _options.CacheType, _options.PrefixCacheBytes, _options.MaxParallel);
        _thread = new Thread(Loop) { IsBackground = true, Name = "SharpSeek batch scheduler" };
        _thread.Start();
    }

    /// <summary>The options in force.</summary>
    public BatchSchedulerOptions Options => _options;

    /// <summary>Positions a sequence may use (prompt plus output).</summary>
    public int ContextLength { get; }

    /// <summary>The model's configuration.</summary>
    public ModelConfig Config => _model.Config;

    /// <summary>The tokenizer, or null.</summary>
    public BpeTokenizer? Tokenizer => _tokenizer;

    /// <summary>A snapshot of the counters.</summary>
    public BatchSchedulerStats Stats
    {
        get
        {
            lock (_lock)
            {
                return new BatchSchedulerStats
                {
                    Queued = _queue.Count,
                    Active = _activeCount,
                    Steps = _steps,
                    Submitted = _submitted,
                    Finished = _finished,
                    Cancelled = _cancelled,
                    Failed = _failed,
                    PrefillTokens = _prefillTokens,
                    CachedTokens = _cachedTokens,
                    DecodeTokens = _decodeTokens,
                    Caches = _prefix.Created,
                    PrefixEntries = _prefix.Entries,
                    FreeCaches = _prefix.Free,
                    PrefixBytes = _prefix.Bytes,
                };
            }
        }
    }

    /// <summary>
    /// Queues a request and returns its handle at once; updates arrive on <see cref="ScheduledGeneration.Updates"/>.
    /// <see cref="GenerationOptions.Speculative"/> and <see cref="GenerationOptions.PrefillChunkTokens"/> are not used
    /// (the scheduler's chunk size applies). Cancelling <paramref name="cancellationToken"/> drops the request at the next step.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is empty, does not fit the context, or holds an id outside the vocabulary; an option is out of range.</exception>
    /// <exception cref="SchedulerFullException">The queue is full.</exception>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    public ScheduledGeneration Submit(IReadOnlyList<int> prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        GenerationOptions o = options ?? new();
        o.Validate();
        if (prompt.Count == 0)
            throw new ArgumentException("the prompt is empty: give at least one token (for example BOS)");
        if (prompt.Count >= ContextLength)
            throw new ArgumentException($"the prompt has {prompt.Count} tokens; the context is {ContextLength}");
        if (o.StopStrings.Count > 0 && _tokenizer is null)
            throw new ArgumentException("stop strings need a tokenizer");
        int[] ids = [.. prompt];
        int V = Config.VocabSize;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)V)
                throw new ArgumentException($"prompt token {id} outside the vocabulary of {V}");
        }
        var state = new SequenceState(V, ids, o, o.Sampling, _tokenizer, _eosIds, collectText: false);
        var seq = new Sequence(ids, state);
        // the handle knows its scheduler and the token its callback before the sequence is queued: the loop may end it
        // (and unregister the callback) as soon as it is in the queue, and a cancel must be able to wake the loop
        seq.Handle.Scheduler = this;
        if (cancellationToken.CanBeCanceled)
            seq.Registration = cancellationToken.Register(static s => ((Sequence)s!).Handle.Cancel(), seq);
        try
        {
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_stopping, this);
                int free = Math.Max(0, _options.MaxParallel - _activeCount); // places the next step fills from the queue
                if (_queue.Count - free >= _options.MaxQueue)
                    throw new SchedulerFullException($"the server is busy: {_queue.Count} requests are waiting (max queue {_options.MaxQueue})");
                _queue.AddLast(seq);
                _submitted++;
                Monitor.Pulse(_lock);
            }
        }
        catch
        {
            seq.Registration.Unregister();
            throw;
        }
        return seq.Handle;
    }

    /// <summary>Submits a request and streams its updates; the last carries the finish reason.</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async IAsyncEnumerable<GenerationUpdate> StreamAsync(IReadOnlyList<int> prompt, GenerationOptions? options = null,
                                                                [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ScheduledGeneration g = Submit(prompt, options, cancellationToken);
        await foreach (GenerationUpdate u in g.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            yield return u;
    }

    /// <summary>Submits a request and waits for the whole result.</summary>
    public async Task<GenerationResult> GenerateAsync(IReadOnlyList<int> prompt, GenerationOptions? options = null,
                                                      CancellationToken cancellationToken = default)
    {
        ScheduledGeneration g = Submit(prompt, options, cancellationToken);
        var tokens = new List<int>();
        var text = new System.Text.StringBuilder();
        FinishReason finish = FinishReason.Length;
        await foreach (GenerationUpdate u in g.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            tokens.Add(u.Token);
            text.Append(u.Text);
            finish = u.FinishReason ?? finish;
        }
        return new GenerationResult
        {
            Tokens = tokens,
            Text = text.ToString(),
            FinishReason = finish,
            StopString = g.StopString,
            Stats = new GenerationStats
            {
                PromptTokens = g.PromptTokens,
                CachedPromptTokens = g.CachedPromptTokens,
                CompletionTokens = tokens.Count,
                PrefillSeconds = g.TimeToFirstToken?.TotalSeconds ?? 0,
                DecodeSeconds = (g.Elapsed - (g.TimeToFirstToken ?? TimeSpan.Zero)).TotalSeconds,
            },
        };
    }

    /// <summary>Stops the loop; requests still queued or running end with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_stopping)
                return;
            _stopping = true;
            Monitor.PulseAll(_lock);
        }
        _thread.Join();
    }

    internal void Wake()
    {
        lock (_lock)
            Monitor.Pulse(_lock);
    }

    private void Loop()
    {
        while (true)
        {
            lock (_lock)
            {
                while (!_stopping && _queue.Count == 0 && _active.Count == 0)
                    Monitor.Wait(_lock);
                if (_stopping)
                    break;
                DropCancelledQueued();
                Admit();
            }
            DropCancelledActive();
            if (_active.Count == 0)
                continue;
            try
            {
                Step();
            }
            catch (Exception e)
            {
                // a bug (or out of memory) in the forward pass: fail the batch, keep serving
                foreach (Sequence s in _active)
                    End(s, e);
                _active.Clear();
                SetActiveCount();
            }
        }
        var disposed = new ObjectDisposedException(nameof(BatchScheduler));
        foreach (Sequence s in _active)
            End(s, disposed);
        _active.Clear();
        lock (_lock)
        {
            foreach (Sequence s in _queue)
                End(s, disposed, fromQueue: true);
            _queue.Clear();
            _activeCount = 0;
        }
    }

    // under _lock
    private void DropCancelledQueued()
    {
        for (LinkedListNode<Sequence>? n = _queue.First; n is not null;)
        {
            LinkedListNode<Sequence>? next = n.Next;
            if (n.Value.Handle.IsCancelled)
            {
                _queue.Remove(n);
                End(n.Value, new OperationCanceledException("the request was cancelled"), fromQueue: true);
            }
            n = next;
        }
    }

    // under _lock: moves queued requests into free places, each with a cache (a reused prefix or an empty one)
    private void Admit()
    {
        while (_active.Count < _options.MaxParallel && _queue.First is { } node)
        {
            _queue.RemoveFirst();
            Sequence s = node.Value;
            (KvCache cache, int common) = _prefix.Take(s.Prompt);
            int q = Math.Min(common, s.Prompt.Length - 1); // the last prompt token is recomputed for its logits
            cache.Truncate(q);
            s.Cache = cache;
            s.Computed = q;
            s.PrefillStart = q;
            s.Handle.CachedPromptTokens = q;
            _cachedTokens += q;
            _active.Add(s);
        }
        _activeCount = _active.Count;
    }

    private void DropCancelledActive()
    {
        bool any = false;
        foreach (Sequence s in _active)
            any |= s.Handle.IsCancelled;
        if (!any)
            return;
        _active.RemoveAll(s =>
        {
            if (!s.Handle.IsCancelled)
                return false;
            End(s, new OperationCanceledException("the request was cancelled"));
            return true;
        });
        SetActiveCount();
    }

    private void SetActiveCount()
    {
        lock (_lock)
            _activeCount = _active.Count;
    }

    private void Step()
    {
        long start = Stopwatch.GetTimestamp();
        int V = Config.VocabSize, chunk = _options.PrefillChunkTokens;
        _slots.Clear();
        _rows.Clear();
        _rowSeq.Clear();
        _caches.Clear();
        int decode = 0, prefill = 0;
        // decode slots: the token sampled last step goes in at the end of its cache
        foreach (Sequence s in _active)
        {
            if (!s.Decoding)
                continue;
            s.Index = _caches.Count;
            _caches.Add(s.Cache!);
            _rows.Add(_slots.Count);
            _rowSeq.Add(s);
            _slots.Add(new TokenSlot(s.Index, s.Cache!.Length, s.Next));
            decode++;
        }
        // prefill chunks, first come first served, cut where a lone run would cut them
        foreach (Sequence s in _active)
        {
            if (s.Decoding)
                continue;
            int P = s.Prompt.Length, a = s.Computed;
            int b = Math.Min(P, s.PrefillStart + ((a - s.PrefillStart) / chunk + 1) * chunk);
            if (prefill > 0 && _slots.Count + (b - a) > _options.MaxStepTokens)
                break;
            s.Index = _caches.Count;
            _caches.Add(s.Cache!);
            for (int p = a; p < b; p++)
                _slots.Add(new TokenSlot(s.Index, p, s.Prompt[p]));
            if (b == P)
            {
                _rows.Add(_slots.Count - 1);
                _rowSeq.Add(s);
            }
            s.Computed = b;
            prefill += b - a;
        }
        if (_slots.Count == 0)
            return;
        if (_rowLogits.Length < _rowSeq.Count)
            _rowLogits = new (float[], int)[Math.Max(_rowSeq.Count, _options.MaxParallel)];
        bool noRows = _rows.Count == 0;
        if (noRows)
            _rows.Add(_slots.Count - 1); // Forward wants at least one logits row; unused
        long forwardStart = Stopwatch.GetTimestamp();
        int lanes = noRows ? 1 : SharpSeek.Inference.Lanes.For(_model, _caches.Count, _options.Lanes);
        double forwardSeconds;
        if (lanes == 1)
        {
            _model.Forward(CollectionsMarshal.AsSpan(_slots), _caches, CollectionsMarshal.AsSpan(_rows), _logits);
            forwardSeconds = Stopwatch.GetElapsedTime(forwardStart).TotalSeconds;
            for (int r = 0; r < _rowSeq.Count; r++)
            {
                _rowLogits[r] = (_logits, r * V);
                SampleRow(r);
            }
        }
        else
        {
            ForwardInLanes(lanes); // each lane samples its own rows after its forward (counted in the forward's time)
            forwardSeconds = Stopwatch.GetElapsedTime(forwardStart).TotalSeconds;
        }
        bool ended = false;
        foreach (Sequence s in _rowSeq)
            ended |= s.State.Finish is not null;
        if (ended)
        {
            _active.RemoveAll(s =>
            {
                if (s.State.Finish is null)
                    return false;
                End(s, null);
                return true;
            });
        }
        lock (_lock)
        {
            _steps++;
            _prefillTokens += prefill;
            _decodeTokens += _rowSeq.Count;
            _activeCount = _active.Count;
        }
        _options.StepCompleted?.Invoke(new BatchStep(_caches.Count, decode, prefill,
                                                     Stopwatch.GetElapsedTime(start).TotalSeconds, forwardSeconds));
    }

    // Samples row r's next token from its logits and hands it to the request (the last one ends the sequence: its
    // State.Finish is set). Rows of different sequences may be sampled on different threads (lanes): each touches only
    // its own sequence.
    private void SampleRow(int r)
    {
        Sequence s = _rowSeq[r];
        (float[] lg, int at) = _rowLogits[r];
        GenerationUpdate u = s.State.SampleAndTake(lg.AsSpan(at, Config.VocabSize), s.Cache!.Length >= ContextLength);
        s.Next = u.Token;
        if (!s.Decoding)
        {
            s.Decoding = true;
            s.Handle.FirstToken();
        }
        s.Handle.Writer.TryWrite(u);
    }

    private (float[] Logits, int At)[] _rowLogits = [];
    private readonly List<StepLane> _lanes = [];

    /// <summary>A lane's share of a step: its model (scratch), slots, caches and logits rows.</summary>
    private sealed class StepLane(Transformer model)
    {
        public Transformer Model { get; } = model;
        public List<TokenSlot> Slots { get; } = [];
        public List<KvCache> Caches { get; } = [];
        public List<int> Rows { get; } = [];
        public List<int> StepRows { get; } = []; // the step's row index (into _rowSeq) of each of Rows
        public float[] Logits = [];
        public int Load;
    }

    // The step's slots split by sequence between lanes (each sequence to the lane with the fewest slots so far, in the
    // step's order), each lane's forward and then the sampling of its rows on its own thread (a sequence's sampling
    // state is its own, so no lane waits for the others' rows to be sampled one after another); _rowLogits[r] points
    // into the lane that computed row r.
    private void ForwardInLanes(int lanes)
    {
        int V = Config.VocabSize, S = _caches.Count;
        while (_lanes.Count < lanes)
            _lanes.Add(new StepLane(_lanes.Count == 0 ? _model : new Transformer(_model.Weights, _model.Backend)));
        for (int k = 0; k < lanes; k++)
        {
            StepLane l = _lanes[k];
            l.Slots.Clear();
            l.Caches.Clear();
            l.Rows.Clear();
            l.StepRows.Clear();
            l.Load = 0;
        }
        Span<int> slotsOf = S <= 1024 ? stackalloc int[S] : new int[S];
        slotsOf.Clear();
        foreach (TokenSlot t in _slots)
            slotsOf[t.Sequence]++;
        Span<int> laneOf = S <= 1024 ? stackalloc int[S] : new int[S];
        Span<int> local = S <= 1024 ? stackalloc int[S] : new int[S];
        for (int j = 0; j < S; j++)
        {
            int best = 0;
            for (int k = 1; k < lanes; k++)
            {
                if (_lanes[k].Load < _lanes[best].Load)
                    best = k;
            }
            StepLane l = _lanes[best];
            laneOf[j] = best;
            local[j] = l.Caches.Count;
            l.Caches.Add(_caches[j]);
            l.Load += slotsOf[j];
        }
        int row = 0;
        for (int t = 0; t < _slots.Count; t++)
        {
            TokenSlot g = _slots[t];
            StepLane l = _lanes[laneOf[g.Sequence]];
            if (row < _rows.Count && _rows[row] == t)
            {
                _rowLogits[row] = (l.Logits, l.Rows.Count); // the array is set below, once its size is known
                l.Rows.Add(l.Slots.Count);
                l.StepRows.Add(row);
                row++;
            }
            l.Slots.Add(new TokenSlot(local[g.Sequence], g.Position, g.Token));
        }
        for (int k = 0; k < lanes; k++)
        {
            StepLane l = _lanes[k];
            if (l.Logits.Length < Math.Max(l.Rows.Count, 1) * V)
                l.Logits = new float[Math.Max(l.Rows.Count, 1) * V];
        }
        for (int r = 0; r < _rows.Count; r++)
        {
            StepLane l = _lanes[laneOf[_slots[_rows[r]].Sequence]];
            _rowLogits[r] = (l.Logits, _rowLogits[r].At * V);
        }
        _runLane ??= RunLane;
        _model.Backend.For(lanes, _runLane);
    }

    private Action<int>? _runLane;

    private void RunLane(int k)
    {
        StepLane l = _lanes[k];
        if (l.Slots.Count == 0)
            return;
        if (l.Rows.Count == 0)
            l.Rows.Add(l.Slots.Count - 1); // prompt chunks only: Forward wants a row; unused
        l.Model.Forward(CollectionsMarshal.AsSpan(l.Slots), l.Caches, CollectionsMarshal.AsSpan(l.Rows), l.Logits);
        foreach (int r in l.StepRows)
            SampleRow(r);
    }

    // Ends a sequence: a finished one's cache (prompt + output but the last token, which was never fed) goes to the
    // prefix cache; a cancelled or failed one's cache is emptied for reuse. The token's callback is unregistered without
    // waiting for a run of it in progress (Dispose would wait): End runs under the scheduler's lock for queued
    // sequences, and that callback takes the lock to wake the scheduler, so waiting for it deadlocked both threads.
    private void End(Sequence s, Exception? error, bool fromQueue = false)
    {
        s.Registration.Unregister();
        if (s.Cache is KvCache cache)
        {
            if (error is null)
            {
                List<int> output = s.State.Output;
                var tokens = new int[s.Prompt.Length + output.Count - 1];
                s.Prompt.CopyTo(tokens, 0);
                CollectionsMarshal.AsSpan(output)[..^1].CopyTo(tokens.AsSpan(s.Prompt.Length));
                Debug.Assert(tokens.Length == cache.Length);
                _prefix.Return(tokens, cache);
            }
            else
            {
                _prefix.Return([], cache);
            }
            s.Cache = null;
        }
        s.Handle.StopString = s.State.StopString;
        if (error is null)
            s.Handle.Writer.TryComplete();
        else
            s.Handle.Writer.TryComplete(error);
        if (fromQueue)
            Count(error);
        else
        {
            lock (_lock)
                Count(error);
        }
    }

    private void Count(Exception? error)
    {
        if (error is null)
            _finished++;
        else if (error is OperationCanceledException)
            _cancelled++;
        else
            _failed++;
    }

    private sealed class Sequence(int[] prompt, SequenceState state)
    {
        public int[] Prompt { get; } = prompt;
        public SequenceState State { get; } = state;
        public ScheduledGeneration Handle { get; } = new(prompt.Length);
        public KvCache? Cache { get; set; }
        public int PrefillStart { get; set; }   // where computation started (after the reused prefix)
        public int Computed { get; set; }       // prompt positions in the cache
        public bool Decoding { get; set; }      // prompt done, Next sampled
        public int Next { get; set; }           // the token to feed next step
        public int Index { get; set; }          // index in this step's cache list
        public CancellationTokenRegistration Registration { get; set; }
    }
}

/// <summary>A request queued on a <see cref="BatchScheduler"/>: its updates, counts and cancellation.</summary>
public sealed class ScheduledGeneration
{
    private readonly Channel<GenerationUpdate> _updates =
        Channel.CreateUnbounded<GenerationUpdate>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly long _submitted = Stopwatch.GetTimestamp();
    private long _firstToken, _done;
    private volatile bool _cancelled;

    internal ScheduledGeneration(int promptTokens)
    {
        PromptTokens = promptTokens;
    }

    internal BatchScheduler? Scheduler { get; set; }

    internal ChannelWriter<GenerationUpdate> Writer => _updates.Writer;

    /// <summary>The updates, one per generated token; the channel completes after the last (with the error when the
    /// request was cancelled or failed).</summary>
    public ChannelReader<GenerationUpdate> Updates => _updates.Reader;

    /// <summary>Tokens in the prompt.</summary>
    public int PromptTokens { get; }

    /// <summary>Prompt tokens reused from the prefix cache (set when the request starts, before its first update).</summary>
    public int CachedPromptTokens { get; internal set; }

    /// <summary>The stop string that ended generation, or null (set before the channel completes).</summary>
    public string? StopString { get; internal set; }

    /// <summary>Time from submission to the first token, null before it.</summary>
    public TimeSpan? TimeToFirstToken
    {
        get
        {
            long t = Interlocked.Read(ref _firstToken);
            return t == 0 ? null : Stopwatch.GetElapsedTime(_submitted, t);
        }
    }

    /// <summary>Time since submission (until completion once complete).</summary>
    public TimeSpan Elapsed
    {
        get
        {
            long t = Interlocked.Read(ref _done);
            return t == 0 ? Stopwatch.GetElapsedTime(_submitted) : Stopwatch.GetElapsedTime(_submitted, t);
        }
    }

    /// <summary>Whether <see cref="Cancel"/> was called.</summary>
    public bool IsCancelled => _cancelled;

    /// <summary>Drops the request at the scheduler's next step; its updates end with <see cref="OperationCanceledException"/>.</summary>
    public void Cancel()
    {
        _cancelled = true;
        Scheduler?.Wake();
    }

    /// <summary>Reads the updates; cancelling <paramref name="cancellationToken"/> cancels the request.</summary>
    public async IAsyncEnumerable<GenerationUpdate> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using CancellationTokenRegistration reg = cancellationToken.Register(static g => ((ScheduledGeneration)g!).Cancel(), this);
        bool complete = false;
        try
        {
            while (await _updates.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (_updates.Reader.TryRead(out GenerationUpdate u))
                {
                    if (u.FinishReason is not null)
                        Interlocked.Exchange(ref _done, Stopwatch.GetTimestamp());
                    yield return u;
                }
            }
            await _updates.Reader.Completion.ConfigureAwait(false);
            complete = true;
        }
        finally
        {
            if (!complete)
                Cancel(); // the reader stopped early (abandoned enumeration): free the sequence
        }
    }

    internal void FirstToken() => Interlocked.CompareExchange(ref _firstToken, Stopwatch.GetTimestamp(), 0);
}
