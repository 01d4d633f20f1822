// Options, streamed updates and results of text generation (docs/design.md seam 7: one options object per concern).
namespace SharpSeek.Inference;

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>A stop token (EOS or an extra one) or a stop string was produced.</summary>
    Stop,

    /// <summary>The token budget (<see cref="GenerationOptions.MaxTokens"/>) or the model's context ran out.</summary>
    Length,
}

/// <summary>Options of one generation call.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate (the stop token counts). Default 256.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>How tokens are chosen. Default: temperature 1, no truncation, no penalties, a random seed.</summary>
    public SamplingOptions Sampling { get; init; } = new();

    /// <summary>Token ids that end generation besides the model's EOS ids (config.json <c>eos_token_id</c> and the
    /// tokenizer's <c>eos_token</c>).</summary>
    public IReadOnlyList<int> StopTokens { get; init; } = [];

    /// <summary>Strings that end generation; they and anything after them are not emitted. Needs a tokenizer.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Do not stop on the EOS ids (the <see cref="StopTokens"/> still stop). Default false.</summary>
    public bool IgnoreEos { get; init; }

    /// <summary>Multi-token-prediction speculative decoding: the model's MTP module drafts one token greedily and
    /// one forward pass over [token, draft] verifies it, on the steps where the generator's
    /// <see cref="Generator.Speculation"/> policy predicts a speed-up (measured step costs, acceptance). Same output
    /// distribution (same tokens when greedy); ignored by <see cref="Generator.GenerateBatch"/>.</summary>
    public bool Speculative { get; init; }

    /// <summary>Tokens the MTP module drafts per speculative step (1-16; default 1). Beyond one the module is applied
    /// recursively, its own output state standing in for the main model's next hidden state (as vLLM and SGLang do with
    /// one MTP layer); one forward over [token, drafts] verifies them all and keeps the longest agreeing prefix.</summary>
    public int SpeculativeTokens { get; init; } = 1;

    /// <summary>Largest <see cref="SpeculativeTokens"/>.</summary>
    public const int MaxSpeculativeTokens = 16;

    /// <summary>Prompt tokens per forward call while prefilling (bounds activation memory). Default 256.</summary>
    public int PrefillChunkTokens { get; init; } = 256;

    /// <summary>Leave special tokens (BOS, EOS, role markers) out of the text. Default true.</summary>
    public bool SkipSpecialTokens { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        if (MaxTokens < 1)
            throw new ArgumentException($"max tokens must be >= 1, got {MaxTokens}");
        if (PrefillChunkTokens < 1)
            throw new ArgumentException($"prefill chunk must be >= 1 token, got {PrefillChunkTokens}");
        if (SpeculativeTokens is < 1 or > MaxSpeculativeTokens)
            throw new ArgumentException($"speculative tokens must be 1-{MaxSpeculativeTokens}, got {SpeculativeTokens}");
        ArgumentNullException.ThrowIfNull(Sampling);
        ArgumentNullException.ThrowIfNull(StopTokens);
        ArgumentNullException.ThrowIfNull(StopStrings);
        Sampling.Validate();
    }
}

/// <summary>
/// One generated token as streamed: its id, the text it completes (empty while a UTF-8 character or a possible stop
/// string is held back; never the stop token's or stop string's text), and on the last update the finish reason.
/// </summary>
/// <param name="Token">The token id sampled.</param>
/// <param name="Text">Text delta to append.</param>
/// <param name="FinishReason">Set on the last update only.</param>
/// <param name="PromptTokens">Tokens in the prompt.</param>
/// <param name="CompletionTokens">Tokens generated so far, this one included.</param>
public readonly record struct GenerationUpdate(int Token, string Text, FinishReason? FinishReason, int PromptTokens, int CompletionTokens);

/// <summary>Counts and timings of one generation.</summary>
public sealed record GenerationStats
{
    /// <summary>Tokens in the prompt.</summary>
    public int PromptTokens { get; init; }

    /// <summary>Prompt tokens whose cache entries were reused from the previous call (not recomputed).</summary>
    public int CachedPromptTokens { get; init; }

    /// <summary>Tokens generated, the stop token included.</summary>
    public int CompletionTokens { get; init; }

    /// <summary>Tokens drafted by the MTP module (speculative decoding).</summary>
    public int DraftTokens { get; init; }

    /// <summary>Drafted tokens that the main model agreed with.</summary>
    public int AcceptedDraftTokens { get; init; }

    /// <summary>Speculative steps taken (each drafts up to <see cref="GenerationOptions.SpeculativeTokens"/> tokens and verifies them in one forward).</summary>
    public int SpeculativeSteps { get; init; }

    /// <summary>Seconds spent on the prompt, up to the first token's logits.</summary>
    public double PrefillSeconds { get; init; }

    /// <summary>Seconds spent generating after the prefill.</summary>
    public double DecodeSeconds { get; init; }

    /// <summary>Speculative generation: decode steps taken without a draft (the policy found drafts would not pay).</summary>
    public int PlainSteps { get; init; }

    /// <summary>Speculative generation: the generator's moving average of a plain decode step's seconds (NaN otherwise).</summary>
    public double PlainStepSeconds { get; init; } = double.NaN;

    /// <summary>Speculative generation: moving average of a draft-and-verify step's seconds (NaN otherwise).</summary>
    public double SpeculativeStepSeconds { get; init; } = double.NaN;

    /// <summary>SpeculativeStepSeconds / PlainStepSeconds: what verifying a draft costs against one plain step.</summary>
    public double CostRatio => SpeculativeStepSeconds / PlainStepSeconds;

    /// <summary>Speculative generation: (1 + accepted drafts a step) / cost ratio at the end, the policy's predicted speed-up.</summary>
    public double PredictedSpeedup { get; init; } = double.NaN;

    /// <summary>Speculative generation: the cost ratio showed drafts cannot pay on this model, so the generator stopped drafting.</summary>
    public bool SpeculationStopped { get; init; }

    /// <summary>Speculative generation: the cost ratio the model's shape predicted (NaN when it has to be measured).</summary>
    public double PriorCostRatio { get; init; } = double.NaN;

    /// <summary>AcceptedDraftTokens / DraftTokens, or 0 with no drafts.</summary>
    public double AcceptanceRate => DraftTokens == 0 ? 0 : (double)AcceptedDraftTokens / DraftTokens;
}

/// <summary>The outcome of a whole generation.</summary>
public sealed record GenerationResult
{
    /// <summary>Generated token ids, the stop token included.</summary>
    public required IReadOnlyList<int> Tokens { get; init; }

    /// <summary>Generated text, without stop tokens or stop strings (empty without a tokenizer).</summary>
    public required string Text { get; init; }

    /// <summary>Why generation ended.</summary>
    public required FinishReason FinishReason { get; init; }

    /// <summary>The stop string that ended generation, or null.</summary>
    public string? StopString { get; init; }

    /// <summary>Counts and timings.</summary>
    public required GenerationStats Stats { get; init; }
}
