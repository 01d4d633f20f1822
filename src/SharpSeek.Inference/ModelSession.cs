// A loaded model ready to run: weights, tokenizer, chat template and compute backend, read once from a Hugging Face
// checkpoint directory or a .gguf file and checked against each other; it creates the generators, chat clients and
// transformers that the CLI verbs and the HTTP server run. A .gguf file is read in one place, LoadGguf.
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tensors;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference;

/// <summary>Whether <see cref="ModelSession.Open"/> loads the model's tokenizer.</summary>
public enum TokenizerLoad
{
    /// <summary>Load it; a model without one is an error (text in, chat).</summary>
    Required,

    /// <summary>Load it when the model has one (text out when available).</summary>
    Optional,

    /// <summary>Do not load it (token ids only; EOS ids come from config.json alone).</summary>
    None,
}

/// <summary>How <see cref="ModelSession.Open"/> loads and runs a model.</summary>
public sealed class ModelSessionOptions
{
    /// <summary>In-memory format of the linear layers; null keeps the stored format.</summary>
    public WeightFormat? Dtype { get; init; }

    /// <summary>Worker threads of a backend the session creates and owns; 0 uses <see cref="Backend"/>, else the default CPU backend.</summary>
    public int Threads { get; init; }

    /// <summary>A backend owned by the caller (used when <see cref="Threads"/> is 0; disposed by the caller after the session).</summary>
    public ComputeBackend? Backend { get; init; }

    /// <summary>Element type of the caches of the generators the session creates.</summary>
    public CacheType CacheType { get; init; } = CacheType.F32;

    /// <summary>Whether to load the tokenizer (and with it the chat template).</summary>
    public TokenizerLoad Tokenizer { get; init; } = TokenizerLoad.Optional;

    /// <summary>How a V3.2 indexer scores; null: fp8, as DeepSeek's reference.</summary>
    public IndexerPrecision? IndexerPrecision { get; init; }

    /// <summary>The chat template to use (<c>--template</c>); null recognises it from tokenizer_config.json and
    /// config.json's model_type (<see cref="ChatTemplate.FromConfig"/>).</summary>
    public ChatTemplateKind? Template { get; init; }
}

/// <summary>
/// A model loaded once from a checkpoint directory (config.json, safetensors, tokenizer.json, tokenizer_config.json)
/// or a .gguf file, with its tokenizer and chat template, validated (the tokenizer's vocabulary fits the model's).
/// Creates <see cref="Generator"/>s (one per concurrent sequence), <see cref="SharpSeekChatClient"/>s and
/// <see cref="Transformer"/>s over the shared weights. Disposing it releases the weights and an owned backend.
/// </summary>
public sealed class ModelSession : IDisposable
{
    private readonly ThreadedBackend? _ownedBackend;
    private readonly ModelSessionOptions _options;

    private ModelSession(string path, ModelWeights weights, BpeTokenizer? tokenizer, ModelSessionOptions options, ThreadedBackend? ownedBackend)
    {
        TrainedLength = Directory.Exists(path) ? ReadTrainedLength(path) : null;
        ContextLength = Math.Min(weights.Config.MaxPositionEmbeddings, TrainedLength ?? int.MaxValue);
        Path = path;
        ModelId = System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(path)));
        Weights = weights;
        Tokenizer = tokenizer;
        Template = tokenizer is null ? null : ChatTemplate.FromConfig(tokenizer.Config, options.Template, weights.Config.ModelType);
        _options = options;
        _ownedBackend = ownedBackend;
        Backend = ownedBackend ?? options.Backend ?? ComputeBackend.Cpu;
    }

    /// <summary>The checkpoint directory or .gguf file as given.</summary>
    public string Path { get; }

    /// <summary>The directory or file name, reported as the model id.</summary>
    public string ModelId { get; }

    /// <summary>The model configuration.</summary>
    public ModelConfig Config => Weights.Config;

    /// <summary>The weights, shared by everything the session creates.</summary>
    public ModelWeights Weights { get; }

    /// <summary>The tokenizer, or null (not requested, or the model has none).</summary>
    public BpeTokenizer? Tokenizer { get; }

    /// <summary>The chat template from the tokenizer's configuration, or null without a tokenizer.</summary>
    public ChatTemplate? Template { get; }

    /// <summary>The backend the transformers run on.</summary>
    public ComputeBackend Backend { get; }

    /// <summary>The length the model records it was trained on (generation_config.json <c>max_length</c>), or null.</summary>
    public int? TrainedLength { get; }

    /// <summary>Prompt plus output of the generators: <c>max_position_embeddings</c>, or <see cref="TrainedLength"/> when smaller.</summary>
    public int ContextLength { get; }

    /// <summary>generation_config.json's <c>max_length</c> in <paramref name="directory"/> (Hugging Face's default limit of
    /// prompt plus generated tokens), or null when the file or the field is absent.</summary>
    /// <exception cref="InvalidDataException">The file is not JSON, or the field is not a positive integer.</exception>
    public static int? ReadTrainedLength(string directory) =>
        ReadGenerationConfig(directory, (int?)null, (root, file) =>
        {
            if (!root.TryGetProperty("max_length", out var v) || v.ValueKind == System.Text.Json.JsonValueKind.Null)
                return null;
            return v.ValueKind == System.Text.Json.JsonValueKind.Number && v.TryGetInt32(out int n) && n >= 2 ? n
                : throw new InvalidDataException($"{file}: field 'max_length' must be an integer >= 2, got {v.GetRawText()}");
        });

    /// <summary>
    /// The sampling defaults a checkpoint recommends in generation_config.json (as transformers and vLLM read them):
    /// <c>do_sample</c> false means greedy (temperature 0), else <c>temperature</c> and <c>top_p</c> where given. Nulls
    /// where the file or the field is absent (a .gguf path has none). Errors name the file and the field.
    /// </summary>
    public static (float? Temperature, float? TopP) ReadSamplingDefaults(string path) =>
        ReadGenerationConfig(path, ((float?)null, (float?)null), (root, file) =>
        {
            float? Number(string key, float min, float max)
            {
                if (!root.TryGetProperty(key, out var v) || v.ValueKind == System.Text.Json.JsonValueKind.Null)
                    return null;
                return v.ValueKind == System.Text.Json.JsonValueKind.Number && v.TryGetDouble(out double d) && d >= min && d <= max ? (float)d
                    : throw new InvalidDataException($"{file}: field '{key}' must be a number in [{min}, {max}], got {v.GetRawText()}");
            }
            float? temperature = Number("temperature", 0, 100), topP = Number("top_p", 0, 1);
            if (root.TryGetProperty("do_sample", out var ds))
            {
                if (ds.ValueKind == System.Text.Json.JsonValueKind.False)
                    return (0f, topP);
                if (ds.ValueKind != System.Text.Json.JsonValueKind.True && ds.ValueKind != System.Text.Json.JsonValueKind.Null)
                    throw new InvalidDataException($"{file}: field 'do_sample' must be true or false, got {ds.GetRawText()}");
            }
            return (temperature, topP);
        });

    // Reads <directory>/generation_config.json with `read` (its root object and the file's path, for errors); `absent`
    // when the directory, the file or a JSON object is not there. Malformed JSON is an InvalidDataException naming the file.
    private static T ReadGenerationConfig<T>(string directory, T absent, Func<System.Text.Json.JsonElement, string, T> read)
    {
        string file = System.IO.Path.Combine(directory, "generation_config.json");
        if (!File.Exists(file))
            return absent;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object ? read(doc.RootElement, file) : absent;
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidDataException($"{file}: not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Loads a model and checks its parts against each other.</summary>
    /// <param name="path">A checkpoint directory or a .gguf file.</param>
    /// <param name="options">Load and run options; null uses the defaults.</param>
    /// <exception cref="FileNotFoundException">A file of the model is missing.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is malformed, or the tokenizer does not fit the model.</exception>
    /// <exception cref="NotSupportedException">A model SharpSeek does not run.</exception>
    public static ModelSession Open(string path, ModelSessionOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new ModelSessionOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Threads);
        var load = new LoadOptions { Dtype = options.Dtype, IndexerPrecision = options.IndexerPrecision };
        (ModelWeights weights, BpeTokenizer? tokenizer) = GgufModel.IsGgufPath(path)
            ? LoadGguf(path, load, options.Tokenizer)
            : LoadDirectory(path, load, options.Tokenizer);
        ThreadedBackend? owned = null;
        try
        {
            if (tokenizer is not null && tokenizer.VocabSize > weights.Config.VocabSize)
                throw new InvalidDataException($"{path}: the tokenizer has {tokenizer.VocabSize} tokens but the model only {weights.Config.VocabSize}");
            owned = options.Threads > 0 ? new ThreadedBackend(options.Threads) : null;
            return new ModelSession(path, weights, tokenizer, options, owned);
        }
        catch
        {
            owned?.Dispose();
            weights.Dispose();
            throw;
        }
    }

    /// <summary>A transformer over the session's weights and backend (it holds its own scratch buffers).</summary>
    public Transformer CreateTransformer() => new(Weights, Backend);

    /// <summary>A generator with its own cache; one per concurrent sequence.</summary>
    /// <param name="cacheType">The cache element type; null uses the session's <see cref="ModelSessionOptions.CacheType"/>.</param>
    public Generator CreateGenerator(CacheType? cacheType = null) =>
        new(CreateTransformer(), Tokenizer, cacheType ?? _options.CacheType, ContextLength);

    /// <summary>A chat client over a new generator; the session keeps the weights (dispose it after the client).</summary>
    /// <param name="defaults">Generation options where a request sets none.</param>
    /// <param name="render">Rendering defaults (thinking, reasoning effort) where a request sets none.</param>
    /// <exception cref="InvalidOperationException">The session has no tokenizer.</exception>
    public SharpSeekChatClient CreateChatClient(GenerationOptions? defaults = null, ChatRenderOptions? render = null)
    {
        if (Tokenizer is null)
            throw new InvalidOperationException($"{Path}: chat needs a tokenizer; open the session with TokenizerLoad.Required");
        return new SharpSeekChatClient(CreateGenerator(), Template, defaults, ModelId) { RenderDefaults = render ?? new ChatRenderOptions() };
    }

    /// <summary>A chat client over a new <see cref="BatchScheduler"/> (which it owns): concurrent requests run in one
    /// continuous batch, and conversations reuse their prefixes from its prefix cache.</summary>
    /// <param name="batching">The scheduler's options; null uses the defaults with the session's cache type.</param>
    /// <param name="defaults">Generation options where a request sets none.</param>
    /// <param name="render">Rendering defaults (thinking, reasoning effort) where a request sets none.</param>
    /// <exception cref="InvalidOperationException">The session has no tokenizer.</exception>
    public SharpSeekChatClient CreateBatchedChatClient(BatchSchedulerOptions? batching = null, GenerationOptions? defaults = null, ChatRenderOptions? render = null)
    {
        if (Tokenizer is null)
            throw new InvalidOperationException($"{Path}: chat needs a tokenizer; open the session with TokenizerLoad.Required");
        var scheduler = new BatchScheduler(CreateTransformer(), Tokenizer, batching ?? new BatchSchedulerOptions { CacheType = _options.CacheType });
        return new SharpSeekChatClient(scheduler, Template, defaults, ModelId, owned: scheduler) { RenderDefaults = render ?? new ChatRenderOptions() };
    }

    /// <summary>Releases the weights and the backend the session created.</summary>
    public void Dispose()
    {
        _ownedBackend?.Dispose();
        Weights.Dispose();
    }

    // The tokenizer first (a missing one fails before the weights are mapped), then config.json and the safetensors.
    private static (ModelWeights, BpeTokenizer?) LoadDirectory(string directory, LoadOptions load, TokenizerLoad tokenizerLoad)
    {
        // the config first: a model this session cannot run (DeepSeek-V4) is named before a missing tokenizer is
        ModelConfig config = ModelConfig.Load(directory);
        BpeTokenizer? tokenizer = tokenizerLoad switch
        {
            TokenizerLoad.Required => BpeTokenizer.LoadFromDirectory(directory),
            TokenizerLoad.Optional => GgufModel.TryLoadTokenizerFor(directory),
            _ => null,
        };
        return (WeightLoader.Load(directory, config, load), tokenizer);
    }

    // The only place the session reads a .gguf file.
    private static (ModelWeights, BpeTokenizer?) LoadGguf(string file, LoadOptions load, TokenizerLoad tokenizerLoad)
    {
        // one parse of the file for the tokenizer, the config and the weights (the weights keep the mapping alive)
        using GgufModelFile gguf = GgufModel.Open(file);
        _ = gguf.Config; // the config first: a model this session cannot run (DeepSeek-V4) is named before a missing tokenizer is
        BpeTokenizer? tokenizer = tokenizerLoad switch
        {
            TokenizerLoad.Required => gguf.RequireTokenizer(),
            TokenizerLoad.Optional => gguf.Tokenizer,
            _ => null,
        };
        return (gguf.LoadWeights(load), tokenizer);
    }
}
