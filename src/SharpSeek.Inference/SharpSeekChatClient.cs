// Microsoft.Extensions.AI IChatClient over a local model: M.E.AI messages -> DeepSeek chat template -> tokens ->
// a Generator or a BatchScheduler; the streamed text is split into reasoning (the think block, TextReasoningContent),
// answer text (TextContent) and the template's tool-call markup (FunctionCallContent). Over a Generator requests run
// one at a time and the next turn of a conversation reuses the generator's cache; over a BatchScheduler concurrent
// requests share its batched steps and reuse prefixes from its prefix cache.
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using SharpSeek.Model;
using SharpSeek.Tokenizer;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using TemplateMessage = SharpSeek.Tokenizer.ChatMessage;

namespace SharpSeek.Inference;

/// <summary>
/// An <see cref="IChatClient"/> that runs a DeepSeek model in-process. <see cref="ChatOptions"/> map to sampling:
/// Temperature, TopP, TopK, MaxOutputTokens, StopSequences, Seed, FrequencyPenalty, PresencePenalty, and in
/// AdditionalProperties "min_p" and "repetition_penalty"; and to rendering: Tools, and in AdditionalProperties DeepSeek's
/// API fields "thinking" (<c>{"type": "enabled"|"disabled"}</c>) and "reasoning_effort" ("low", "high", "max").
/// Thread-safe: over a <see cref="Inference.Generator"/> concurrent requests wait their turn; over a
/// <see cref="BatchScheduler"/> they run together in its continuous batch.
/// </summary>
public sealed class SharpSeekChatClient : IChatClient
{
    private static readonly JsonSerializerOptions Compact = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly IDisposable? _owned;
    private int _calls;

    /// <summary>Creates a client over a generator that has a tokenizer.</summary>
    /// <param name="generator">Runs the model; must have a <see cref="Generator.Tokenizer"/>.</param>
    /// <param name="template">The chat template; null reads it from the tokenizer's tokenizer_config.json.</param>
    /// <param name="defaults">Generation options used where <see cref="ChatOptions"/> say nothing (MaxTokens 1024 if null).</param>
    /// <param name="modelId">Reported as the model id.</param>
    /// <param name="owned">Disposed with the client (for example the weights).</param>
    public SharpSeekChatClient(Generator generator, ChatTemplate? template = null, GenerationOptions? defaults = null,
                               string? modelId = null, IDisposable? owned = null)
        : this(generator ?? throw new ArgumentNullException(nameof(generator)), null,
               generator.Tokenizer ?? throw new ArgumentException("the generator needs a tokenizer for chat", nameof(generator)),
               generator.Model.Config, generator.ContextLength, template, defaults, modelId, owned)
    {
    }

    /// <summary>Creates a client over a batch scheduler that has a tokenizer: concurrent requests (from any thread)
    /// share its batched steps, and a conversation's next turn takes its prefix from the scheduler's prefix cache.</summary>
    /// <param name="scheduler">Runs the model; must have a <see cref="BatchScheduler.Tokenizer"/>.</param>
    /// <param name="template">The chat template; null reads it from the tokenizer's tokenizer_config.json.</param>
    /// <param name="defaults">Generation options used where <see cref="ChatOptions"/> say nothing (MaxTokens 1024 if null).</param>
    /// <param name="modelId">Reported as the model id.</param>
    /// <param name="owned">Disposed with the client (for example the scheduler).</param>
    public SharpSeekChatClient(BatchScheduler scheduler, ChatTemplate? template = null, GenerationOptions? defaults = null,
                               string? modelId = null, IDisposable? owned = null)
        : this(null, scheduler ?? throw new ArgumentNullException(nameof(scheduler)),
               scheduler.Tokenizer ?? throw new ArgumentException("the scheduler needs a tokenizer for chat", nameof(scheduler)),
               scheduler.Config, scheduler.ContextLength, template, defaults, modelId, owned)
    {
    }

    /// <summary>Creates a client over a DeepSeek-V4 generator that has a tokenizer (requests run one at a time; each turn
    /// prefills the whole conversation, as V4's cache cannot be cut back to a shared prefix).</summary>
    /// <param name="generator">Runs the model; must have a <see cref="V4Generator.Tokenizer"/>.</param>
    /// <param name="template">The chat template; null: DeepSeek-V4's encoding.</param>
    /// <param name="defaults">Generation options used where <see cref="ChatOptions"/> say nothing (MaxTokens 1024 if null).</param>
    /// <param name="modelId">Reported as the model id.</param>
    /// <param name="owned">Disposed with the client (for example the weights).</param>
    public SharpSeekChatClient(V4Generator generator, ChatTemplate? template = null, GenerationOptions? defaults = null,
                               string? modelId = null, IDisposable? owned = null)
        : this(null, null, generator?.Tokenizer ?? throw new ArgumentException("the generator needs a tokenizer for chat", nameof(generator)),
               null, generator.ContextLength, template ?? ChatTemplate.Create(ChatTemplateKind.DeepSeekV4), defaults, modelId ?? Model.V4.V4Config.ModelType, owned)
    {
        V4Generator = generator;
    }

    private SharpSeekChatClient(Generator? generator, BatchScheduler? scheduler, BpeTokenizer tokenizer, ModelConfig? config, int contextLength,
                                ChatTemplate? template, GenerationOptions? defaults, string? modelId, IDisposable? owned)
    {
        Generator = generator;
        Scheduler = scheduler;
        Tokenizer = tokenizer;
        Config = config;
        ModelType = config?.ModelType ?? Model.V4.V4Config.ModelType;
        ContextLength = contextLength;
        Template = template ?? ChatTemplate.FromConfig(Tokenizer.Config);
        Defaults = defaults ?? new GenerationOptions { MaxTokens = 1024 };
        Defaults.Validate();
        Metadata = new ChatClientMetadata("sharpseek", null, modelId ?? ModelType);
        _owned = owned;
    }

    /// <summary>Loads a model directory (config.json, safetensors, tokenizer.json, tokenizer_config.json) or a .gguf file
    /// through a <see cref="ModelSession"/>; the client owns the session (not the <paramref name="backend"/>, which the
    /// caller disposes after the client).</summary>
    public static SharpSeekChatClient Load(string directory, CacheType cacheType = CacheType.F32, GenerationOptions? defaults = null,
                                           LoadOptions? loadOptions = null, SharpSeek.Tensors.ComputeBackend? backend = null)
    {
        ModelSession session = ModelSession.Open(directory, new ModelSessionOptions
        {
            Dtype = loadOptions?.Dtype,
            Backend = backend,
            CacheType = cacheType,
            Tokenizer = TokenizerLoad.Required,
        });
        try
        {
            return new SharpSeekChatClient(session.CreateGenerator(), session.Template, defaults, session.ModelId, session);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The generator (its cache holds the last conversation), or null over a scheduler.</summary>
    public Generator? Generator { get; }

    /// <summary>The batch scheduler, or null over a generator.</summary>
    public BatchScheduler? Scheduler { get; }

    /// <summary>The DeepSeek-V4 generator, or null for the V2/V3 family.</summary>
    public V4Generator? V4Generator { get; }

    /// <summary>config.json's model_type of the model.</summary>
    public string ModelType { get; }

    /// <summary>The model's configuration.</summary>
    public ModelConfig? Config { get; }

    /// <summary>Positions a conversation may use, prompt plus reply.</summary>
    public int ContextLength { get; }

    /// <summary>The tokenizer.</summary>
    public BpeTokenizer Tokenizer { get; }

    /// <summary>The chat template.</summary>
    public ChatTemplate Template { get; }

    /// <summary>Options where a request's <see cref="ChatOptions"/> leave a field unset.</summary>
    public GenerationOptions Defaults { get; }

    /// <summary>Rendering where a request sets nothing: thinking (null: the template's default), reasoning effort.
    /// Its <see cref="ChatRenderOptions.Tools"/> and <see cref="ChatRenderOptions.AddGenerationPrompt"/> are not used
    /// (a request's tools come from <see cref="ChatOptions.Tools"/>; the prompt always ends with the generation prompt).</summary>
    public ChatRenderOptions RenderDefaults { get; init; } = new();

    /// <summary>Provider "sharpseek" and the model id.</summary>
    public ChatClientMetadata Metadata { get; }

    /// <inheritdoc />
    public Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
                                               CancellationToken cancellationToken = default) =>
        GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
                                                                                [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ChatRenderOptions render = RenderOptionsFor(options);
        string prompt = RenderPrompt(messages, options);
        int[] ids = Tokenizer.Encode(prompt);
        GenerationOptions o = MapOptions(options, ids.Length);
        string responseId = $"chatcmpl-{Interlocked.Increment(ref _calls)}-{Guid.NewGuid():N}"[..32];
        DateTimeOffset created = DateTimeOffset.UtcNow;
        var parser = ChatOutputParser.For(Template, render, prompt);
        int reasoningTokens = 0;

        // over a scheduler the request joins its batch (a full queue throws SchedulerFullException); over a generator
        // it waits for the one sequence
        ScheduledGeneration? scheduled = Scheduler?.Submit(ids, o, cancellationToken);
        if (scheduled is null)
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            IAsyncEnumerable<GenerationUpdate> updates = scheduled is not null
                ? scheduled.ReadAllAsync(cancellationToken)
                : V4Generator is { } v4 ? v4.StreamAsync(ids, o, cancellationToken)
                : Generator!.StreamAsync(ids, o, cancellationToken);
            await foreach (GenerationUpdate u in updates.ConfigureAwait(false))
            {
                if (parser.InReasoning)
                    reasoningTokens++;
                var contents = new List<AIContent>();
                AddContents(parser.Push(u.Text), contents);
                if (u.FinishReason is FinishReason finish)
                {
                    AddContents(parser.Flush(), contents);
                    contents.Add(new UsageContent(new UsageDetails
                    {
                        InputTokenCount = u.PromptTokens,
                        OutputTokenCount = u.CompletionTokens,
                        TotalTokenCount = u.PromptTokens + u.CompletionTokens,
                        CachedInputTokenCount = scheduled?.CachedPromptTokens ?? Generator?.LastStats.CachedPromptTokens ?? 0,
                        ReasoningTokenCount = reasoningTokens,
                    }));
                    yield return Update(contents, responseId, created,
                        parser.ToolCallCount > 0 ? ChatFinishReason.ToolCalls : finish == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop);
                    yield break;
                }
                if (contents.Count > 0)
                    yield return Update(contents, responseId, created, null);
            }
        }
        finally
        {
            if (scheduled is null)
                _gate.Release();
        }
    }

    /// <summary>The prompt text the template renders for these messages (with the generation prompt).</summary>
    /// <exception cref="ArgumentException">A message or option the template cannot render (the message names it).</exception>
    public string RenderPrompt(IEnumerable<AiChatMessage> messages, ChatOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ChatRenderOptions render = RenderOptionsFor(options);
        var list = new List<TemplateMessage>();
        if (!string.IsNullOrEmpty(options?.Instructions))
            list.Add(TemplateMessage.System(options.Instructions));
        bool encoderTools = Template.Kind is ChatTemplateKind.DeepSeekV32 or ChatTemplateKind.DeepSeekV4;
        if (options?.Tools is { Count: > 0 } toolList)
        {
            if (encoderTools)
                render = render with { Tools = [.. toolList.Select(ToDefinition)] };
            else
                list.Add(TemplateMessage.System(DescribeTools(toolList, Template.Kind)));
        }
        foreach (AiChatMessage m in messages)
            Convert(m, list);
        return Template.Render(list, render);
    }

    /// <summary>The rendering options of a request: <see cref="RenderDefaults"/> overridden by the request's
    /// AdditionalProperties "thinking" and "reasoning_effort" (DeepSeek's API fields), with the generation prompt.</summary>
    /// <exception cref="ArgumentException">A field has a value DeepSeek's API does not define (the message names it).</exception>
    public ChatRenderOptions RenderOptionsFor(ChatOptions? options)
    {
        ChatRenderOptions r = RenderDefaults with { AddGenerationPrompt = true, Tools = null };
        if (options?.AdditionalProperties is { } extra)
        {
            if (extra.TryGetValue("thinking", out object? thinking) && thinking is not null)
                r = r with { Thinking = ChatRenderOptions.ParseApiThinking(AsJson(thinking)) ?? r.Thinking };
            if (extra.TryGetValue("reasoning_effort", out object? effort) && effort is not null)
                r = r with { ReasoningEffort = ChatRenderOptions.ParseReasoningEffort(effort as string ?? AsJson(effort).ToString()) };
        }
        return r;
    }

    private static JsonElement AsJson(object value) =>
        value as JsonElement? ?? JsonSerializer.SerializeToElement(value, AIJsonUtilities.DefaultOptions.GetTypeInfo(value.GetType()));

    // an M.E.AI tool as the OpenAI function object the V3.2/V4 encoders print: name, description, parameters
    private static ToolDefinition ToDefinition(AITool tool)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("name", tool.Name);
            if (!string.IsNullOrEmpty(tool.Description))
                w.WriteString("description", tool.Description);
            if (tool is AIFunctionDeclaration f)
            {
                w.WritePropertyName("parameters");
                f.JsonSchema.WriteTo(w);
            }
            w.WriteEndObject();
        }
        using JsonDocument doc = JsonDocument.Parse(stream.ToArray());
        return ToolDefinition.FromFunction(doc.RootElement, $"tool '{tool.Name}'");
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
            return null;
        if (serviceType == typeof(ChatClientMetadata))
            return Metadata;
        if (serviceType.IsInstanceOfType(this))
            return this;
        if (Generator is not null && serviceType.IsInstanceOfType(Generator))
            return Generator;
        if (Scheduler is not null && serviceType.IsInstanceOfType(Scheduler))
            return Scheduler;
        if (V4Generator is not null && serviceType.IsInstanceOfType(V4Generator))
            return V4Generator;
        if (serviceType.IsInstanceOfType(Tokenizer))
            return Tokenizer;
        return serviceType.IsInstanceOfType(Template) ? Template : null;
    }

    /// <summary>Releases what the client owns (the weights, the scheduler).</summary>
    public void Dispose()
    {
        _owned?.Dispose();
        _gate.Dispose();
    }

    private GenerationOptions MapOptions(ChatOptions? options, int promptTokens)
    {
        GenerationOptions d = Defaults;
        SamplingOptions s = d.Sampling;
        int maxTokens = d.MaxTokens;
        IReadOnlyList<string> stops = d.StopStrings;
        if (options is not null)
        {
            s = s with
            {
                Temperature = options.Temperature ?? s.Temperature,
                TopP = options.TopP ?? s.TopP,
                TopK = options.TopK ?? s.TopK,
                Seed = options.Seed ?? s.Seed,
                FrequencyPenalty = options.FrequencyPenalty ?? s.FrequencyPenalty,
                PresencePenalty = options.PresencePenalty ?? s.PresencePenalty,
                MinP = Extra(options, "min_p") ?? s.MinP,
                RepetitionPenalty = Extra(options, "repetition_penalty") ?? s.RepetitionPenalty,
            };
            maxTokens = options.MaxOutputTokens ?? maxTokens;
            if (options.StopSequences is { Count: > 0 } extra)
                stops = [.. stops, .. extra];
        }
        int room = ContextLength - promptTokens;
        if (room < 1)
            throw new ArgumentException($"the conversation has {promptTokens} tokens; the model's context is {ContextLength}");
        return d with { Sampling = s, MaxTokens = Math.Min(maxTokens, room), StopStrings = stops };
    }

    private static float? Extra(ChatOptions options, string key)
    {
        if (options.AdditionalProperties is null || !options.AdditionalProperties.TryGetValue(key, out object? v) || v is null)
            return null;
        return v switch
        {
            float f => f,
            double x => (float)x,
            int i => i,
            JsonElement { ValueKind: JsonValueKind.Number } e => e.GetSingle(),
            string str when float.TryParse(str, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float p) => p,
            _ => throw new ArgumentException($"option '{key}' must be a number"),
        };
    }

    private static void AddContents(ChatDelta d, List<AIContent> contents)
    {
        if (d.Reasoning.Length > 0)
            contents.Add(new TextReasoningContent(d.Reasoning));
        if (d.Content.Length > 0)
            contents.Add(new TextContent(d.Content));
        foreach (ToolCall call in d.ToolCalls)
        {
            string id = call.Id ?? $"call_{Guid.NewGuid():N}"[..29];
            contents.Add(FunctionCallContent.CreateFromParsedArguments(call.Arguments, id, call.Name,
                static json => JsonSerializer.Deserialize<Dictionary<string, object?>>(json, AIJsonUtilities.DefaultOptions)));
        }
    }

    private ChatResponseUpdate Update(List<AIContent> contents, string responseId, DateTimeOffset created, ChatFinishReason? finish) =>
        new(ChatRole.Assistant, contents)
        {
            ResponseId = responseId,
            MessageId = responseId,
            CreatedAt = created,
            ModelId = Metadata.DefaultModelId,
            FinishReason = finish,
        };

    // M.E.AI message -> template messages: text joined; reasoning kept on assistant turns (R1's template drops it);
    // function calls -> tool_calls (content null when there is no text, as V3's template expects); each function
    // result -> one "tool" message.
    private static void Convert(AiChatMessage m, List<TemplateMessage> list)
    {
        string role = m.Role.Value;
        var text = new StringBuilder();
        var reasoning = new StringBuilder();
        var calls = new List<ToolCall>();
        foreach (AIContent c in m.Contents)
        {
            switch (c)
            {
                case TextContent t:
                    text.Append(t.Text);
                    break;
                case TextReasoningContent r:
                    reasoning.Append(r.Text);
                    break;
                case FunctionCallContent f:
                    calls.Add(new ToolCall(f.CallId, f.Name, JsonSerializer.Serialize(f.Arguments ?? new Dictionary<string, object?>(), Compact)));
                    break;
                case FunctionResultContent fr:
                    string result = fr.Result as string ?? JsonSerializer.Serialize(fr.Result, Compact);
                    list.Add(TemplateMessage.Tool(result, fr.CallId));
                    break;
            }
        }
        bool hadResults = m.Contents.Any(c => c is FunctionResultContent);
        if (role == "tool")
        {
            if (!hadResults)
                list.Add(TemplateMessage.Tool(text.ToString()));
            return;
        }
        if (hadResults && calls.Count == 0 && text.Length == 0)
            return;
        if (role is not ("system" or "user" or "assistant"))
            throw new ArgumentException($"chat role '{role}' is not supported (system, user, assistant, tool)");
        string? content = text.Length > 0 || calls.Count == 0 ? text.ToString() : null;
        list.Add(new TemplateMessage(role, content)
        {
            ReasoningContent = reasoning.Length > 0 ? reasoning.ToString() : null,
            ToolCalls = calls.Count > 0 ? calls : null,
        });
    }

    // The V3, R1 and V3.1 templates render no tool list: the tools go in a system message (ToolPrompt)
    private static string DescribeTools(IList<AITool> tools, ChatTemplateKind kind) =>
        ToolPrompt.Describe(tools.Select(t => new ToolDescription(t.Name, t.Description, (t as AIFunctionDeclaration)?.JsonSchema.GetRawText())), kind);
}
