// What a chat rendering depends on besides the messages: the generation prompt, the thinking toggle of the hybrid
// models (V3.1, V3.2, V4), V4's reasoning effort and request-level tools; and the names the CLI and DeepSeek's API use
// for them (--template v3|r1|v3.1|v3.2|v4, --think on|off, "thinking": {"type": "enabled"|"disabled"},
// "reasoning_effort": "low"|"high"|"max").
using System.Text.Json;

namespace SharpSeek.Tokenizer;

/// <summary>How <see cref="ChatTemplate.Render(IReadOnlyList{ChatMessage}, ChatRenderOptions)"/> renders a conversation.
/// One object per request; the CLI fills it from <c>--think</c>, a server from the request's <c>thinking</c>,
/// <c>reasoning_effort</c> and <c>tools</c> fields (<see cref="ParseApiThinking"/>, <see cref="ParseReasoningEffort"/>).</summary>
public sealed record ChatRenderOptions
{
    /// <summary>Append the text that makes the model answer as the assistant (the V3/R1/V3.1 Jinja's
    /// <c>add_generation_prompt</c>). DeepSeek's V3.2 and V4 encoders have no such switch: after a user or tool
    /// message they always open the assistant turn, and they ignore this.</summary>
    public bool AddGenerationPrompt { get; init; } = true;

    /// <summary>Thinking mode of a hybrid template (V3.1: the Jinja's <c>thinking</c>; V3.2/V4: <c>thinking_mode</c>
    /// "thinking" or "chat"); null uses <see cref="ChatTemplate.DefaultThinking"/>. Setting it for V3 or R1, whose
    /// templates have no toggle, is an error.</summary>
    public bool? Thinking { get; init; }

    /// <summary>V4's <c>reasoning_effort</c>: <see cref="ReasoningEffort.Max"/> prefixes the prompt with DeepSeek's
    /// maximum-effort instruction in thinking mode; the other levels render nothing.</summary>
    public ReasoningEffort? ReasoningEffort { get; init; }

    /// <summary>V3.2/V4: drop the reasoning of assistant turns before the last user message (the encoders'
    /// <c>drop_thinking</c>, default true; V4 keeps all reasoning when any message declares tools).</summary>
    public bool DropThinking { get; init; } = true;

    /// <summary>Request-level tools (OpenAI <c>tools</c>). The V3.2/V4 encoders print them in the system prompt: they
    /// are attached to the first message when it is a system message without tools, else to a new empty system
    /// message put first. The V3, R1 and V3.1 templates do not render tools (their Jinja ignores them).</summary>
    public IReadOnlyList<ToolDefinition>? Tools { get; init; }

    /// <summary>Parses DeepSeek's API field <c>thinking</c>: <c>{"type": "enabled"}</c> or <c>{"type": "disabled"}</c>
    /// (also accepted: a bare "enabled"/"disabled" string or true/false); null when the field is null or absent.</summary>
    /// <exception cref="ArgumentException">Any other value (the message names the field).</exception>
    public static bool? ParseApiThinking(JsonElement? thinking)
    {
        if (thinking is not JsonElement e || e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
            return null;
        JsonElement type = e;
        if (e.ValueKind == JsonValueKind.Object && !e.TryGetProperty("type", out type))
            throw new ArgumentException("thinking: expected {\"type\": \"enabled\"} or {\"type\": \"disabled\"}, the object has no 'type'");
        return type.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.String when type.ValueEquals("enabled") => true,
            JsonValueKind.String when type.ValueEquals("disabled") => false,
            _ => throw new ArgumentException($"thinking.type: expected \"enabled\" or \"disabled\", got {type.GetRawText()}"),
        };
    }

    /// <summary>Parses a <c>--think</c> value: on/off (also true/false, enabled/disabled, 1/0).</summary>
    /// <exception cref="ArgumentException">Any other value (the message names <c>--think</c>).</exception>
    public static bool ParseThinkSwitch(string value, string option = "--think")
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Trim().ToLowerInvariant() switch
        {
            "on" or "true" or "enabled" or "1" => true,
            "off" or "false" or "disabled" or "0" => false,
            _ => throw new ArgumentException($"{option}: '{value}' is not on or off"),
        };
    }

    /// <summary>Parses DeepSeek's API field <c>reasoning_effort</c> with its documented mapping (minimal/low -> low;
    /// medium/high/xhigh -> high; max/ultra -> max); null for null.</summary>
    /// <exception cref="ArgumentException">An unknown level (the message names the field).</exception>
    public static ReasoningEffort? ParseReasoningEffort(string? value, string field = "reasoning_effort") => value?.Trim().ToLowerInvariant() switch
    {
        null => null,
        "minimal" or "low" => Tokenizer.ReasoningEffort.Low,
        "medium" or "high" or "xhigh" => Tokenizer.ReasoningEffort.High,
        "max" or "ultra" => Tokenizer.ReasoningEffort.Max,
        _ => throw new ArgumentException($"{field}: '{value}' is not low, high or max"),
    };
}

/// <summary>DeepSeek's reasoning effort levels.</summary>
public enum ReasoningEffort
{
    /// <summary>low (renders nothing in V4's encoder).</summary>
    Low,

    /// <summary>high, the API's default (renders nothing).</summary>
    High,

    /// <summary>max: V4 prefixes the prompt with its maximum-effort instruction in thinking mode.</summary>
    Max,
}
