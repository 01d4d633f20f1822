// Reading OpenAI request bodies: every field is type-checked and range-checked, and a bad one is a 400 naming it
// (OpenAI's "param"). Unknown fields are ignored, as OpenAI-compatible servers do. No field names a file: the model
// is fixed when the server starts, and "model" is only compared with its id.
using System.Text.Json;
using SharpSeek.Inference;
using SharpSeek.Tokenizer;

namespace SharpSeek.Server;

/// <summary>How the request lets the model call tools (<c>tool_choice</c>).</summary>
internal enum ToolChoiceKind { Auto, None, Required, Named }

/// <summary>What chat and text completion requests share: sampling, limits, stops, streaming.</summary>
internal record GenerationRequest
{
    public string? Model { get; init; }
    public int? MaxTokens { get; init; }
    public SamplingOptions Sampling { get; init; } = new();
    public IReadOnlyList<string> Stop { get; init; } = [];
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
}

/// <summary>A parsed <c>POST /v1/chat/completions</c> body.</summary>
internal sealed record ChatRequest : GenerationRequest
{
    public required IReadOnlyList<ChatMessage> Messages { get; init; }
    public IReadOnlyList<ToolDescription> Tools { get; init; } = [];

    /// <summary>The same tools as the <c>function</c> objects the V3.2/V4 encoders print.</summary>
    public IReadOnlyList<ToolDefinition> ToolDefinitions { get; init; } = [];
    public ToolChoiceKind ToolChoice { get; init; }

    /// <summary>DeepSeek's <c>thinking</c> field: null when absent (the server's default applies).</summary>
    public bool? Thinking { get; init; }

    /// <summary>DeepSeek's <c>reasoning_effort</c> field (OpenAI's, too), or null.</summary>
    public ReasoningEffort? ReasoningEffort { get; init; }
    public string? ToolChoiceName { get; init; }
}

/// <summary>A parsed <c>POST /v1/completions</c> body: the prompt as text or as token ids.</summary>
internal sealed record CompletionRequest : GenerationRequest
{
    public string? PromptText { get; init; }
    public int[]? PromptIds { get; init; }
}

internal static class OpenAiRequests
{
    public static ChatRequest ParseChat(JsonElement root)
    {
        RequireObject(root);
        if (!root.TryGetProperty("messages", out JsonElement m) || m.ValueKind != JsonValueKind.Array)
            throw ApiException.BadRequest("'messages' is required and must be an array of message objects", "messages");
        if (m.GetArrayLength() == 0)
            throw ApiException.BadRequest("'messages' must contain at least one message", "messages");
        IReadOnlyList<ChatMessage> parsed;
        try
        {
            parsed = ChatMessage.ParseJson(m.GetRawText(), "messages");
        }
        catch (InvalidDataException e)
        {
            throw ApiException.BadRequest(e.Message, "messages");
        }
        var messages = new List<ChatMessage>(parsed.Count);
        for (int i = 0; i < parsed.Count; i++)
        {
            ChatMessage msg = parsed[i];
            string role = msg.Role == "developer" ? "system" : msg.Role; // OpenAI's newer name for system
            if (role is not ("system" or "user" or "assistant" or "tool"))
                throw ApiException.BadRequest($"messages[{i}]: role '{msg.Role}' is not supported (system, developer, user, assistant, tool)", $"messages[{i}].role");
            if (msg.Content is null && !(role == "assistant" && msg.ToolCalls is { Count: > 0 }))
                throw ApiException.BadRequest($"messages[{i}]: 'content' is required for role '{msg.Role}'", $"messages[{i}].content");
            messages.Add(msg with { Role = role });
        }
        GenerationRequest g = ParseGeneration(root, "max_completion_tokens");
        (IReadOnlyList<ToolDescription> tools, IReadOnlyList<ToolDefinition> definitions, ToolChoiceKind choice, string? name) = ParseTools(root);
        (bool? thinking, ReasoningEffort? effort) = ParseThinking(root);
        return new ChatRequest
        {
            Model = g.Model,
            MaxTokens = g.MaxTokens,
            Sampling = g.Sampling,
            Stop = g.Stop,
            Stream = g.Stream,
            IncludeUsage = g.IncludeUsage,
            Messages = messages,
            Tools = tools,
            ToolDefinitions = definitions,
            ToolChoice = choice,
            ToolChoiceName = name,
            Thinking = thinking,
            ReasoningEffort = effort,
        };
    }

    public static CompletionRequest ParseCompletion(JsonElement root)
    {
        RequireObject(root);
        if (!root.TryGetProperty("prompt", out JsonElement p))
            throw ApiException.BadRequest("'prompt' is required", "prompt");
        string? text = null;
        int[]? ids = null;
        const string Shapes = "'prompt' must be a string, an array of one string, or an array of token ids";
        switch (p.ValueKind)
        {
            case JsonValueKind.String:
                text = p.GetString()!;
                break;
            case JsonValueKind.Array when p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String:
                text = p[0].GetString()!;
                break;
            case JsonValueKind.Array when p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.Array:
                ids = TokenIds(p[0]);
                break;
            case JsonValueKind.Array when p.GetArrayLength() > 0 && p[0].ValueKind == JsonValueKind.Number:
                ids = TokenIds(p);
                break;
            case JsonValueKind.Array when p.GetArrayLength() > 1:
                throw ApiException.BadRequest("only one prompt per request is supported", "prompt");
            default:
                throw ApiException.BadRequest(Shapes, "prompt");
        }
        if (text is { Length: 0 } || ids is { Length: 0 })
            throw ApiException.BadRequest("'prompt' is empty", "prompt");
        if (Bool(root, "echo") == true)
            throw ApiException.BadRequest("'echo' is not supported", "echo");
        if (root.TryGetProperty("suffix", out JsonElement suffix) && suffix.ValueKind != JsonValueKind.Null)
            throw ApiException.BadRequest("'suffix' is not supported", "suffix");
        Int(root, "best_of", 1, 1);
        GenerationRequest g = ParseGeneration(root, null);
        return new CompletionRequest
        {
            Model = g.Model,
            MaxTokens = g.MaxTokens ?? 16, // OpenAI's default for completions
            Sampling = g.Sampling,
            Stop = g.Stop,
            Stream = g.Stream,
            IncludeUsage = g.IncludeUsage,
            PromptText = text,
            PromptIds = ids,
        };
    }

    private static GenerationRequest ParseGeneration(JsonElement root, string? maxTokensAlias)
    {
        string? model = String(root, "model");
        int? maxTokens = Int(root, "max_tokens", 1, int.MaxValue);
        if (maxTokensAlias is not null && Int(root, maxTokensAlias, 1, int.MaxValue) is int alias)
            maxTokens = alias;
        Int(root, "n", 1, 1); // one choice per request
        if (Bool(root, "logprobs") == true || (root.TryGetProperty("logprobs", out JsonElement lp) && lp.ValueKind == JsonValueKind.Number))
            throw ApiException.BadRequest("'logprobs' is not supported", "logprobs");
        if (root.TryGetProperty("response_format", out JsonElement rf) && rf.ValueKind != JsonValueKind.Null)
        {
            if (rf.ValueKind != JsonValueKind.Object || !rf.TryGetProperty("type", out JsonElement t) || !t.ValueEquals("text"))
                throw ApiException.BadRequest("only 'response_format' {\"type\": \"text\"} is supported", "response_format");
        }
        var defaults = new SamplingOptions();
        var sampling = new SamplingOptions
        {
            Temperature = (float)(Number(root, "temperature", 0, 2) ?? defaults.Temperature),
            TopP = (float)(Number(root, "top_p", 0, 1) ?? defaults.TopP),
            TopK = Int(root, "top_k", 0, int.MaxValue) ?? 0,
            MinP = (float)(Number(root, "min_p", 0, 1) ?? 0),
            RepetitionPenalty = (float)(Number(root, "repetition_penalty", 0, 10) ?? 1),
            PresencePenalty = (float)(Number(root, "presence_penalty", -2, 2) ?? 0),
            FrequencyPenalty = (float)(Number(root, "frequency_penalty", -2, 2) ?? 0),
            Seed = Long(root, "seed"),
        };
        if (sampling.TopP <= 0)
            throw ApiException.BadRequest("'top_p' must be greater than 0", "top_p");
        if (sampling.RepetitionPenalty <= 0)
            throw ApiException.BadRequest("'repetition_penalty' must be greater than 0", "repetition_penalty");
        bool stream = Bool(root, "stream") ?? false;
        bool includeUsage = false;
        if (root.TryGetProperty("stream_options", out JsonElement so) && so.ValueKind != JsonValueKind.Null)
        {
            if (so.ValueKind != JsonValueKind.Object)
                throw ApiException.BadRequest("'stream_options' must be an object", "stream_options");
            includeUsage = Bool(so, "include_usage", "stream_options.include_usage") ?? false;
        }
        return new GenerationRequest
        {
            Model = model,
            MaxTokens = maxTokens,
            Sampling = sampling,
            Stop = Stops(root),
            Stream = stream,
            IncludeUsage = includeUsage,
        };
    }

    // DeepSeek's API fields: "thinking": {"type": "enabled"|"disabled"} and "reasoning_effort": "low"|"high"|"max"
    // (ChatRenderOptions parses both; its messages start with the field, which becomes the error's param)
    private static (bool?, ReasoningEffort?) ParseThinking(JsonElement root)
    {
        bool? thinking;
        try
        {
            thinking = ChatRenderOptions.ParseApiThinking(root.TryGetProperty("thinking", out JsonElement t) ? t : null);
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message, e.Message.StartsWith("thinking.type:", StringComparison.Ordinal) ? "thinking.type" : "thinking");
        }
        string? level = String(root, "reasoning_effort");
        try
        {
            return (thinking, ChatRenderOptions.ParseReasoningEffort(level));
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message, "reasoning_effort");
        }
    }

    private static (IReadOnlyList<ToolDescription>, IReadOnlyList<ToolDefinition>, ToolChoiceKind, string?) ParseTools(JsonElement root)
    {
        var tools = new List<ToolDescription>();
        var definitions = new List<ToolDefinition>();
        if (root.TryGetProperty("tools", out JsonElement ts) && ts.ValueKind != JsonValueKind.Null)
        {
            if (ts.ValueKind != JsonValueKind.Array)
                throw ApiException.BadRequest("'tools' must be an array", "tools");
            int i = 0;
            foreach (JsonElement t in ts.EnumerateArray())
            {
                string where = $"tools[{i++}]";
                if (t.ValueKind != JsonValueKind.Object || !t.TryGetProperty("function", out JsonElement f) || f.ValueKind != JsonValueKind.Object)
                    throw ApiException.BadRequest($"{where} must be an object with a 'function' object", where);
                if (String(t, "type", where + ".type") is string type && type != "function")
                    throw ApiException.BadRequest($"{where}: only tools of type 'function' are supported", where + ".type");
                string name = String(f, "name", where + ".function.name") ?? throw ApiException.BadRequest($"{where}: 'function.name' is required", where + ".function.name");
                if (name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
                    throw ApiException.BadRequest($"{where}: function name '{name}' must be letters, digits, '_', '-' or '.'", where + ".function.name");
                string? parameters = null;
                if (f.TryGetProperty("parameters", out JsonElement ps) && ps.ValueKind != JsonValueKind.Null)
                {
                    if (ps.ValueKind != JsonValueKind.Object)
                        throw ApiException.BadRequest($"{where}: 'function.parameters' must be a JSON Schema object", where + ".function.parameters");
                    parameters = ps.GetRawText();
                }
                tools.Add(new ToolDescription(name, String(f, "description", where + ".function.description"), parameters));
                definitions.Add(ToolDefinition.FromFunction(f, where));
            }
        }
        ToolChoiceKind choice = ToolChoiceKind.Auto;
        string? named = null;
        if (root.TryGetProperty("tool_choice", out JsonElement tc) && tc.ValueKind != JsonValueKind.Null)
        {
            if (tc.ValueKind == JsonValueKind.String)
            {
                choice = tc.GetString() switch
                {
                    "auto" => ToolChoiceKind.Auto,
                    "none" => ToolChoiceKind.None,
                    "required" => ToolChoiceKind.Required,
                    string other => throw ApiException.BadRequest($"'tool_choice' must be 'none', 'auto', 'required' or a function, got '{other}'", "tool_choice"),
                    null => ToolChoiceKind.Auto,
                };
            }
            else if (tc.ValueKind == JsonValueKind.Object && tc.TryGetProperty("function", out JsonElement fn) && fn.ValueKind == JsonValueKind.Object
                     && String(fn, "name", "tool_choice.function.name") is string n)
            {
                choice = ToolChoiceKind.Named;
                named = n;
            }
            else
                throw ApiException.BadRequest("'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice");
            if (choice is ToolChoiceKind.Required or ToolChoiceKind.Named && tools.Count == 0)
                throw ApiException.BadRequest("'tool_choice' asks for a tool call but 'tools' is empty", "tool_choice");
            if (choice == ToolChoiceKind.Named && !tools.Any(t => t.Name == named))
                throw ApiException.BadRequest($"'tool_choice' names function '{named}', which is not in 'tools'", "tool_choice");
        }
        return (tools, definitions, choice, named);
    }

    private static IReadOnlyList<string> Stops(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out JsonElement s) || s.ValueKind == JsonValueKind.Null)
            return [];
        if (s.ValueKind == JsonValueKind.String)
            return s.GetString()!.Length == 0 ? [] : [s.GetString()!];
        if (s.ValueKind != JsonValueKind.Array)
            throw ApiException.BadRequest("'stop' must be a string or an array of strings", "stop");
        var stops = new List<string>();
        foreach (JsonElement e in s.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String)
                throw ApiException.BadRequest("'stop' must be a string or an array of strings", "stop");
            if (e.GetString()!.Length > 0)
                stops.Add(e.GetString()!);
        }
        if (stops.Count > 16)
            throw ApiException.BadRequest("'stop' holds more than 16 strings", "stop");
        return stops;
    }

    private static int[] TokenIds(JsonElement a)
    {
        var ids = new int[a.GetArrayLength()];
        int i = 0;
        foreach (JsonElement e in a.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out ids[i]) || ids[i] < 0)
                throw ApiException.BadRequest($"'prompt'[{i}] is not a token id", "prompt");
            i++;
        }
        return ids;
    }

    private static void RequireObject(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest("the request body must be a JSON object");
    }

    private static string? String(JsonElement o, string name, string? param = null)
    {
        if (!o.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw ApiException.BadRequest($"'{param ?? name}' must be a string", param ?? name);
    }

    private static bool? Bool(JsonElement o, string name, string? param = null)
    {
        if (!o.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.BadRequest($"'{param ?? name}' must be a boolean", param ?? name),
        };
    }

    private static double? Number(JsonElement o, string name, double min, double max)
    {
        if (!o.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
            return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || !double.IsFinite(d))
            throw ApiException.BadRequest($"'{name}' must be a number", name);
        if (d < min || d > max)
            throw ApiException.BadRequest($"'{name}' must be between {min} and {max}, got {d}", name);
        return d;
    }

    private static int? Int(JsonElement o, string name, int min, int max)
    {
        if (!o.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
            return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i))
            throw ApiException.BadRequest($"'{name}' must be an integer", name);
        if (i < min || i > max)
            throw ApiException.BadRequest(max == int.MaxValue ? $"'{name}' must be at least {min}, got {i}" : $"'{name}' must be between {min} and {max}, got {i}", name);
        return i;
    }

    private static long? Long(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long l) ? l : throw ApiException.BadRequest($"'{name}' must be an integer", name);
    }
}
