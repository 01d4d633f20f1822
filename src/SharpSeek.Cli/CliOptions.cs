// Options several verbs share and their parsing: --model (with the default model), --dtype, --cache-type, --threads,
// token id lists, the sampling options of generate and chat, --template/--think of the chat verbs, and opening a
// model session with a progress line.
// Bad values throw UserInputException naming the option.
using System.CommandLine;
using SharpSeek.Inference;
using SharpSeek.Model;
using SharpSeek.Tensors;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class CliOptions
{
    /// <summary>--verbose, on every verb: stack traces on errors.</summary>
    public static Option<bool> Verbose() =>
        new("--verbose") { Description = "Print the stack trace of an error (also SHARPSEEK_DEBUG=1)", Recursive = true };

    public static Option<string> Dtype() => new("--dtype") { Description = "In-memory weight format: stored (default), f32, bf16, fp8, q8_0, q4_k" };

    /// <summary>Parses --dtype: null for stored.</summary>
    public static WeightFormat? ParseDtype(string? name) =>
        name is null or "stored" ? null : CliErrors.UserValue(() => WeightConversion.ParseName(name));

    /// <summary>The --cache-type option of the generating verbs.</summary>
    public static Option<string> CacheType(string defaultType) =>
        new("--cache-type") { Description = "Latent cache element type: f32, bf16 or int8 (8 bits and two scales per token: half of bf16, lossy)", DefaultValueFactory = _ => defaultType };

    /// <summary>The --indexer-precision option of the verbs that run a model (DeepSeek-V3.2's indexer).</summary>
    public static Option<string?> IndexerPrecision() =>
        new("--indexer-precision") { Description = "DeepSeek-V3.2 indexer arithmetic: fp8 (DeepSeek's reference, default) or f32 (as llama.cpp)" };

    /// <summary>Parses --indexer-precision (null when not given).</summary>
    public static IndexerPrecision? ParseIndexerPrecision(string? name) => name switch
    {
        null => null,
        "fp8" => Model.IndexerPrecision.Fp8,
        "f32" => Model.IndexerPrecision.F32,
        _ => throw new UserInputException($"--indexer-precision must be fp8 or f32, got '{name}'"),
    };

    public static CacheType ParseCacheType(string? name) => name switch
    {
        "f32" => Model.CacheType.F32,
        "bf16" => Model.CacheType.BF16,
        "int8" => Model.CacheType.Int8,
        _ => throw new UserInputException($"--cache-type must be f32, bf16 or int8, got '{name}'"),
    };

    public static Option<int> Threads(string? description = null) =>
        new("--threads") { Description = description, DefaultValueFactory = _ => Environment.ProcessorCount };

    /// <summary>The --threads value, which must be at least 1.</summary>
    public static int PositiveThreads(int threads) =>
        threads >= 1 ? threads : throw new UserInputException($"--threads must be >= 1, got {threads}");

    /// <summary>Parses "5,17,42" (spaces and brackets allowed) into ids.</summary>
    public static int[] ParseIds(string text, string option)
    {
        string[] parts = text.Trim().Trim('[', ']').Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], out ids[i]) || ids[i] < 0)
                throw new UserInputException($"{option}: '{parts[i]}' is not a token id");
        }
        if (ids.Length == 0)
            throw new UserInputException($"{option}: no token ids given");
        return ids;
    }

    /// <summary>Every id below the vocabulary size, else an error naming the option.</summary>
    public static void CheckIds(ReadOnlySpan<int> ids, int vocabSize, string option)
    {
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)vocabSize)
                throw new UserInputException($"{option}: token id {id} is outside the model's vocabulary of {vocabSize}");
        }
    }

    /// <summary>Opens a model session, with a progress line on stderr when it is a terminal.</summary>
    public static ModelSession OpenSession(string path, ModelSessionOptions options)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        bool show = !Console.IsErrorRedirected;
        if (show)
            Console.Error.Write($"loading {path}... ");
        ModelSession s;
        try
        {
            s = ModelSession.Open(path, options);
        }
        catch when (show)
        {
            Console.Error.WriteLine(); // the error goes on its own line
            throw;
        }
        if (show)
            Console.Error.WriteLine($"{s.Config.ModelType}, {s.Config.NumHiddenLayers} layers, done in {sw.Elapsed.TotalSeconds:0.00} s");
        return s;
    }
}

/// <summary>The model the main job runs when no --model is given: models/sharpseek-r1 (the reasoning chat model), shipped in the repository.</summary>
internal static class DefaultModel
{
    public const string RelativePath = "models/sharpseek-r1";

    public static Option<string> Option() => new("--model")
    {
        Description = $"Model directory or .gguf file (default: {RelativePath}, the model shipped with SharpSeek; or $SHARPSEEK_MODEL)",
    };

    /// <summary>The given path, else $SHARPSEEK_MODEL, else models/sharpseek-r1 under the current directory or above the executable.</summary>
    public static string Resolve(string? given)
    {
        if (!string.IsNullOrEmpty(given))
            return given;
        string? env = Environment.GetEnvironmentVariable("SHARPSEEK_MODEL");
        if (!string.IsNullOrEmpty(env))
            return env;
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (string? d = start; d is not null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, RelativePath);
                if (File.Exists(Path.Combine(candidate, "config.json")))
                    return candidate;
            }
        }
        throw new FileNotFoundException($"no --model given and the default model {RelativePath} (config.json + model.safetensors) was not found here or above the executable");
    }
}

/// <summary>The options generate and chat share: model, runtime and sampling.</summary>
internal sealed class GenerationOptionSet
{
    public readonly Option<string> Model = DefaultModel.Option();
    public readonly Option<int> MaxTokens;
    public readonly Option<float?> Temperature = new("--temperature") { Description = "Softmax temperature; 0 = greedy (default: the model's generation_config.json, else 0.6)" };
    public readonly Option<int> TopK = new("--top-k") { Description = "Keep the k most likely tokens (0 = off)" };
    public readonly Option<float?> TopP = new("--top-p") { Description = "Nucleus: smallest set with this much probability (default: the model's generation_config.json, else 0.95; 1 = off)" };
    public readonly Option<float> MinP = new("--min-p") { Description = "Drop tokens below this fraction of the top probability (0 = off)" };
    public readonly Option<float> RepeatPenalty = new("--repeat-penalty") { Description = "Divide positive / multiply negative logits of seen tokens (1 = off)", DefaultValueFactory = _ => 1f };
    public readonly Option<float> PresencePenalty = new("--presence-penalty") { Description = "Subtract once from generated tokens' logits" };
    public readonly Option<float> FrequencyPenalty = new("--frequency-penalty") { Description = "Subtract per occurrence from generated tokens' logits" };
    public readonly Option<long?> Seed = new("--seed") { Description = "Random seed (same seed, same output)" };
    public readonly Option<string[]> Stop = new("--stop") { Description = "Stop string (repeatable); not printed", AllowMultipleArgumentsPerToken = false };
    public readonly Option<bool> IgnoreEos = new("--ignore-eos") { Description = "Do not stop at the EOS token" };
    public readonly Option<string> CacheType = CliOptions.CacheType("f32");
    public readonly Option<bool> Speculative = new("--speculative") { Description = "MTP speculative decoding (models with an MTP module)" };
    public readonly Option<int> SpeculativeTokens = new("--speculative-tokens") { Description = "With --speculative: tokens drafted a step (1-16; more than 1 applies the MTP module recursively)", DefaultValueFactory = _ => 1 };
    public readonly Option<int> Threads = CliOptions.Threads("CPU threads");
    public readonly Option<string> Dtype = CliOptions.Dtype();
    public readonly Option<string?> IndexerPrecision = CliOptions.IndexerPrecision();

    public GenerationOptionSet(int defaultMaxTokens)
    {
        MaxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => defaultMaxTokens };
    }

    public IEnumerable<Option> All => [Model, MaxTokens, Temperature, TopK, TopP, MinP, RepeatPenalty, PresencePenalty, FrequencyPenalty,
                                       Seed, Stop, IgnoreEos, CacheType, Speculative, SpeculativeTokens, Threads, Dtype, IndexerPrecision];

    /// <summary>The generation options, validated (a bad value is the user's mistake); temperature and top-p default to
    /// what <paramref name="modelPath"/>'s generation_config.json recommends (do_sample false: greedy), else 0.6 and 0.95.</summary>
    public GenerationOptions Options(ParseResult pr, string? modelPath = null)
    {
        (float? temperature, float? topP) = modelPath is null ? (null, null) : CliErrors.UserValue(() => ModelSession.ReadSamplingDefaults(modelPath));
        var o = new GenerationOptions
        {
            MaxTokens = pr.GetValue(MaxTokens),
            Sampling = new SamplingOptions
            {
                Temperature = pr.GetValue(Temperature) ?? temperature ?? 0.6f,
                TopK = pr.GetValue(TopK),
                TopP = pr.GetValue(TopP) ?? topP ?? 0.95f,
                MinP = pr.GetValue(MinP),
                RepetitionPenalty = pr.GetValue(RepeatPenalty),
                PresencePenalty = pr.GetValue(PresencePenalty),
                FrequencyPenalty = pr.GetValue(FrequencyPenalty),
                Seed = pr.GetValue(Seed),
            },
            StopStrings = pr.GetValue(Stop) ?? [],
            IgnoreEos = pr.GetValue(IgnoreEos),
            Speculative = pr.GetValue(Speculative),
            SpeculativeTokens = pr.GetValue(SpeculativeTokens),
        };
        if (o.SpeculativeTokens != 1 && !o.Speculative)
            throw new UsageException("--speculative-tokens needs --speculative");
        CliErrors.UserValue(o.Validate);
        return o;
    }

    /// <summary>Session options from --dtype, --threads and --cache-type.</summary>
    public ModelSessionOptions SessionOptions(ParseResult pr, TokenizerLoad tokenizer, ChatTemplateKind? template = null) => new()
    {
        Template = template,
        Dtype = CliOptions.ParseDtype(pr.GetValue(Dtype)),
        Threads = CliOptions.PositiveThreads(pr.GetValue(Threads)),
        CacheType = CliOptions.ParseCacheType(pr.GetValue(CacheType)),
        Tokenizer = tokenizer,
        IndexerPrecision = CliOptions.ParseIndexerPrecision(pr.GetValue(IndexerPrecision)),
    };
}

/// <summary>--template and --think, which chat, generate --chat and template share (a server can take the same): the
/// chat template and the thinking mode of the hybrid templates.</summary>
internal sealed class ChatFormatOptionSet
{
    public readonly Option<string> Template = new("--template")
    {
        Description = $"Chat template: {ChatTemplate.Names} (default: recognised from tokenizer_config.json, or config.json's model_type for v3.2/v4)",
    };

    public readonly Option<string> Think = new("--think")
    {
        Description = "Thinking mode of the v3.1, v3.2 and v4 templates: on or off (default: off for v3.1 and v3.2, on for v4)",
    };

    public IEnumerable<Option> All => [Template, Think];

    /// <summary>Whether either option was given.</summary>
    public bool Given(ParseResult pr) => pr.GetValue(Template) is not null || pr.GetValue(Think) is not null;

    /// <summary>The --template choice, or null; a bad name is the user's mistake.</summary>
    public ChatTemplateKind? Kind(ParseResult pr) =>
        pr.GetValue(Template) is string name ? CliErrors.UserValue(() => ChatTemplate.ParseName(name)) : null;

    /// <summary>The --think choice, or null; a bad value is the user's mistake.</summary>
    public bool? Thinking(ParseResult pr) =>
        pr.GetValue(Think) is string value ? CliErrors.UserValue(() => ChatRenderOptions.ParseThinkSwitch(value)) : null;

    /// <summary>Rendering options for <paramref name="template"/>; --think on a template without the toggle is an error.</summary>
    public ChatRenderOptions Render(ParseResult pr, ChatTemplate template, bool addGenerationPrompt = true)
    {
        bool? thinking = Thinking(pr);
        if (thinking is not null && !template.SupportsThinking)
            throw new UserInputException($"--think: the {ChatTemplate.NameOf(template.Kind)} template has no thinking toggle " +
                                         $"({(template.Kind == ChatTemplateKind.DeepSeekR1 ? "R1 always thinks" : "V3 never thinks")}; use --template v3.1, v3.2 or v4)");
        return new ChatRenderOptions { Thinking = thinking, AddGenerationPrompt = addGenerationPrompt };
    }
}
