// Generation with a DeepSeek-V4 model: prefill the prompt into a V4Cache, then sample one token per step with the same
// per-sequence state as Generator (sampler, streaming detokenizer, stop strings and tokens, max tokens, context end).
// One sequence at a time; no MTP speculation yet (the V4 cache keeps only its window of raw rows, so a rejected draft
// cannot be cut back out: verification would need a cache copy per step).
using System.Diagnostics;
using System.Runtime.CompilerServices;
using SharpSeek.Model.V4;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference;

/// <summary>Streams completions of a DeepSeek-V4 model.</summary>
public sealed class V4Generator
{
    private readonly int[] _eosIds;
    private float[] _logits = [];

    /// <param name="contextLength">Positions to generate up to (the model's max_position_embeddings when null or larger).</param>
    public V4Generator(V4Transformer model, BpeTokenizer? tokenizer = null, int? contextLength = null)
    {
        Model = model;
        Tokenizer = tokenizer;
        ContextLength = Math.Min(model.Config.MaxPositionEmbeddings, contextLength ?? int.MaxValue);
        _eosIds = model.Config.EosTokenIds;
    }

    public V4Transformer Model { get; }
    public BpeTokenizer? Tokenizer { get; }
    public int ContextLength { get; }

    /// <summary>Timings and counts of the last completed (or interrupted) stream.</summary>
    public GenerationStats LastStats { get; private set; } = new();

    /// <summary>Yields one update per generated token; the last one carries the finish reason.</summary>
    /// <exception cref="ArgumentException">An empty prompt, one that fills the context, a token id outside the vocabulary, or --speculative.</exception>
    public IEnumerable<GenerationUpdate> Stream(IReadOnlyList<int> prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        GenerationOptions o = options ?? new();
        o.Validate();
        if (o.Speculative)
            throw new ArgumentException("speculative decoding is not available for DeepSeek-V4 models yet");
        if (prompt.Count == 0)
            throw new ArgumentException("the prompt is empty");
        if (prompt.Count >= ContextLength)
            throw new ArgumentException($"the prompt has {prompt.Count} tokens; the context holds {ContextLength}");
        int V = Model.Config.VocabSize;
        int[] ids = [.. prompt];
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)V)
                throw new ArgumentException($"prompt token id {id} outside the vocabulary of {V}");
        }
        return Run(ids, o, cancellationToken);
    }

    /// <summary>As <see cref="Stream"/>, yielding to the caller's context first (the steps run synchronously on it).</summary>
    public async IAsyncEnumerable<GenerationUpdate> StreamAsync(IReadOnlyList<int> prompt, GenerationOptions? options = null,
                                                                [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        IEnumerable<GenerationUpdate> updates = Stream(prompt, options, cancellationToken);
        await Task.Yield();
        foreach (GenerationUpdate u in updates)
            yield return u;
    }

    private IEnumerable<GenerationUpdate> Run(int[] prompt, GenerationOptions o, CancellationToken ct)
    {
        int V = Model.Config.VocabSize;
        if (_logits.Length < V)
            _logits = new float[V];
        var state = new SequenceState(V, prompt, o, o.Sampling, Tokenizer, _eosIds, collectText: false);
        V4Cache cache = Model.CreateCache();
        var clock = Stopwatch.StartNew();
        double prefill = 0;
        try
        {
            // the prompt in chunks of PrefillChunkTokens (the scratch buffers grow with the chunk, not the prompt)
            for (int s = 0; s < prompt.Length; s += o.PrefillChunkTokens)
            {
                ct.ThrowIfCancellationRequested();
                int n = Math.Min(o.PrefillChunkTokens, prompt.Length - s);
                Model.Forward(prompt.AsSpan(s, n), cache, s + n == prompt.Length ? [n - 1] : [], _logits);
            }
            prefill = clock.Elapsed.TotalSeconds;
            while (true)
            {
                GenerationUpdate u = state.SampleAndTake(_logits.AsSpan(0, V), atContextEnd: cache.Length + 1 >= ContextLength);
                yield return u;
                if (state.Finish is not null)
                    yield break;
                ct.ThrowIfCancellationRequested();
                Model.Forward([u.Token], cache, [0], _logits);
            }
        }
        finally
        {
            LastStats = new GenerationStats
            {
                PromptTokens = prompt.Length,
                CompletionTokens = state.Output.Count,
                PrefillSeconds = prefill,
                DecodeSeconds = clock.Elapsed.TotalSeconds - prefill,
            };
        }
    }
}
