// What one sequence carries through decoding besides its cache: the sampler and its token history, the streaming
// detokenizer, the stop-string filter, the stop-token set and the counts. Shared by the single-sequence and
// batched paths of Generator.
using System.Text;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference;

internal sealed class SequenceState
{
    private readonly StreamingDecoder? _decoder;
    private readonly StopStringFilter _filter;
    private readonly bool[] _stopTokens;
    private readonly int _maxTokens;
    private readonly StringBuilder? _text;

    public SequenceState(int vocabSize, ReadOnlySpan<int> prompt, GenerationOptions o, SamplingOptions sampling,
                         BpeTokenizer? tokenizer, IEnumerable<int> eosIds, bool collectText)
    {
        // ids past the tokenizer's vocabulary (padding rows of the model's) have no text: never drawn
        Sampler = new Sampler(sampling, vocabSize, tokenizer?.VocabSize ?? 0);
        Sampler.AddPrompt(prompt);
        PromptTokens = prompt.Length;
        _maxTokens = o.MaxTokens;
        Output = new List<int>(Math.Min(o.MaxTokens, 1 << 16));
        _decoder = tokenizer?.CreateStreamingDecoder(o.SkipSpecialTokens);
        _filter = new StopStringFilter(o.StopStrings);
        _stopTokens = new bool[vocabSize];
        if (!o.IgnoreEos)
        {
            foreach (int id in eosIds)
            {
                if ((uint)id < (uint)vocabSize)
                    _stopTokens[id] = true;
            }
        }
        foreach (int id in o.StopTokens)
        {
            if ((uint)id >= (uint)vocabSize)
                throw new ArgumentException($"stop token {id} outside the vocabulary of {vocabSize}");
            _stopTokens[id] = true;
        }
        _text = collectText ? new StringBuilder() : null;
    }

    public Sampler Sampler { get; }

    public List<int> Output { get; }

    public int PromptTokens { get; }

    public FinishReason? Finish { get; private set; }

    public string? StopString => _filter.Matched;

    public string Text => _text?.ToString() ?? string.Empty;

    /// <summary>Samples from logits [V], records the token and returns its update.</summary>
    public GenerationUpdate SampleAndTake(ReadOnlySpan<float> logits, bool atContextEnd) => Take(Sampler.Sample(logits), atContextEnd);

    /// <summary>Records a token chosen from the model's distribution: counts, text, stop checks.</summary>
    public GenerationUpdate Take(int token, bool atContextEnd)
    {
        Sampler.Accept(token);
        Output.Add(token);
        string text;
        if (_stopTokens[token])
        {
            text = Drain();
            Finish = FinishReason.Stop;
        }
        else
        {
            text = _filter.Push(_decoder?.Push(token) ?? string.Empty);
            if (_filter.Matched is not null)
                Finish = FinishReason.Stop;
            else if (Output.Count >= _maxTokens || atContextEnd)
            {
                text += Drain();
                Finish ??= FinishReason.Length;
            }
        }
        _text?.Append(text);
        return new GenerationUpdate(token, text, Finish, PromptTokens, Output.Count);
    }

    // end of stream: what the decoder and the stop filter still hold (a stop string may complete in it)
    private string Drain()
    {
        string text = _filter.Push(_decoder?.Flush() ?? string.Empty);
        if (_filter.Matched is not null)
        {
            Finish = FinishReason.Stop;
            return text;
        }
        return text + _filter.Flush();
    }
}
