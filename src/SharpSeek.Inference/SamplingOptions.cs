// Sampling options (one options object per concern, docs/design.md seam 7): the knobs of Hugging Face
// transformers' GenerationConfig, llama.cpp's common_params_sampling and OpenAI's chat completions.
namespace SharpSeek.Inference;

/// <summary>How the next token is chosen from the logits; see <see cref="Sampler"/> for the order of the steps.</summary>
public sealed record SamplingOptions
{
    /// <summary>Greedy decoding: always the most likely token (temperature 0).</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Softmax temperature; 0 (or less) means greedy, the argmax of the penalized logits. Default 1.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the <c>TopK</c> most likely tokens; 0 disables. Default 0.</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus sampling: keep the smallest set of most likely tokens whose probability sums to at least
    /// <c>TopP</c>; 1 disables. Default 1.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Keep only tokens whose probability is at least <c>MinP</c> times the largest; 0 disables. Default 0.</summary>
    public float MinP { get; init; }

    /// <summary>Repetition penalty (CTRL, llama.cpp <c>repeat_penalty</c>, vLLM <c>repetition_penalty</c>) for every token
    /// seen in the prompt or the output: a positive logit is divided by it, a negative one multiplied; 1 disables.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>OpenAI presence penalty: subtracted once from the logit of every token already generated; 0 disables.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>OpenAI frequency penalty: subtracted from a token's logit once per time it was generated; 0 disables.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Seed of the random draws: the same seed, logits and options give the same tokens. Null draws a seed.</summary>
    public long? Seed { get; init; }

    /// <summary>Whether sampling reduces to the argmax (temperature 0 or top-k 1).</summary>
    public bool IsGreedy => Temperature <= 0 || TopK == 1;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        if (!float.IsFinite(Temperature))
            throw new ArgumentException($"temperature must be a finite number, got {Temperature}");
        if (TopK < 0)
            throw new ArgumentException($"top-k must be >= 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1))
            throw new ArgumentException($"top-p must be in (0, 1], got {TopP}");
        if (!(MinP >= 0 && MinP <= 1))
            throw new ArgumentException($"min-p must be in [0, 1], got {MinP}");
        if (!(RepetitionPenalty > 0 && float.IsFinite(RepetitionPenalty)))
            throw new ArgumentException($"repetition penalty must be > 0, got {RepetitionPenalty}");
        if (!float.IsFinite(PresencePenalty))
            throw new ArgumentException($"presence penalty must be a finite number, got {PresencePenalty}");
        if (!float.IsFinite(FrequencyPenalty))
            throw new ArgumentException($"frequency penalty must be a finite number, got {FrequencyPenalty}");
    }
}
