// OpenAI-style chat messages: role, content, reasoning_content, tool_calls and tool_call_id, with a reader for
// the JSON array form used by chat APIs ([{"role": "user", "content": "..."}, ...]).
using System.Text.Json;

namespace SharpSeek.Tokenizer;

/// <summary>A function call made by the assistant (OpenAI <c>tool_calls[i]</c>).</summary>
/// <param name="Id">The call id (<c>id</c>), or null.</param>
/// <param name="Name">The function name (<c>function.name</c>).</param>
/// <param name="Arguments">The arguments as a JSON string (<c>function.arguments</c>).</param>
/// <param name="Type">The call type (<c>type</c>), "function".</param>
public sealed record ToolCall(string? Id, string Name, string Arguments, string Type = "function");

/// <summary>One chat message.</summary>
/// <param name="Role">"system", "user", "assistant" or "tool"; the templates ignore other roles, as the Jinja does.</param>
/// <param name="Content">The text, or null (an assistant message that only calls tools).</param>
public sealed record ChatMessage(string Role, string? Content)
{
    /// <summary>The reasoning of an assistant turn (<c>reasoning_content</c>); the DeepSeek templates do not render it.</summary>
    public string? ReasoningContent { get; init; }

    /// <summary>The tool calls of an assistant turn, or null when the message has none.</summary>
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }

    /// <summary>The call a tool message answers (<c>tool_call_id</c>), or null.</summary>
    public string? ToolCallId { get; init; }

    /// <summary>A system message.</summary>
    public static ChatMessage System(string content) => new("system", content);

    /// <summary>A user message.</summary>
    public static ChatMessage User(string content) => new("user", content);

    /// <summary>An assistant message.</summary>
    public static ChatMessage Assistant(string? content, IReadOnlyList<ToolCall>? toolCalls = null) =>
        new("assistant", content) { ToolCalls = toolCalls };

    /// <summary>A tool result.</summary>
    public static ChatMessage Tool(string content, string? toolCallId = null) => new("tool", content) { ToolCallId = toolCallId };

    /// <summary>Reads messages from a JSON file holding an array of OpenAI-style message objects.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The JSON is invalid or a message is malformed (the message names it).</exception>
    public static IReadOnlyList<ChatMessage> LoadJson(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"messages file not found: {path}", path);
        return ParseJson(File.ReadAllText(path), path);
    }

    /// <summary>Parses a JSON array of OpenAI-style message objects. <c>content</c> may be a string, null or absent, or
    /// an array of <c>{"type": "text", "text": ...}</c> parts (joined); <c>function.arguments</c> may be a JSON string or
    /// a JSON value (kept as its JSON text).</summary>
    /// <param name="json">the JSON text</param>
    /// <param name="source">names the input in error messages</param>
    /// <exception cref="InvalidDataException">The JSON is invalid or a message is malformed.</exception>
    public static IReadOnlyList<ChatMessage> ParseJson(string json, string source = "messages")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("messages", out JsonElement inner))
                root = inner; // a whole chat request
            if (root.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{source}: expected a JSON array of messages");
            var messages = new List<ChatMessage>(root.GetArrayLength());
            int i = 0;
            foreach (JsonElement m in root.EnumerateArray())
                messages.Add(ParseMessage(m, $"{source}: message {i++}"));
            return messages;
        }
    }

    private static ChatMessage ParseMessage(JsonElement m, string where)
    {
        if (m.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where} is not a JSON object");
        string role = RequiredString(m, "role", where);
        string? content = m.TryGetProperty("content", out JsonElement c) ? ReadContent(c, where) : null;
        List<ToolCall>? calls = null;
        if (m.TryGetProperty("tool_calls", out JsonElement tc) && tc.ValueKind != JsonValueKind.Null)
        {
            if (tc.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{where}: 'tool_calls' must be an array");
            calls = [];
            int k = 0;
            foreach (JsonElement call in tc.EnumerateArray())
                calls.Add(ParseToolCall(call, $"{where}: tool_calls[{k++}]"));
        }
        return new ChatMessage(role, content)
        {
            ReasoningContent = OptionalString(m, "reasoning_content", where),
            ToolCalls = calls,
            ToolCallId = OptionalString(m, "tool_call_id", where),
        };
    }

    private static ToolCall ParseToolCall(JsonElement call, string where)
    {
        if (call.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where} is not a JSON object");
        if (!call.TryGetProperty("function", out JsonElement f) || f.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where}: missing object 'function'");
        string name = RequiredString(f, "name", where + ".function");
        string arguments = "{}";
        if (f.TryGetProperty("arguments", out JsonElement a) && a.ValueKind != JsonValueKind.Null)
            arguments = a.ValueKind == JsonValueKind.String ? a.GetString()! : a.GetRawText();
        return new ToolCall(OptionalString(call, "id", where), name, arguments, OptionalString(call, "type", where) ?? "function");
    }

    private static string? ReadContent(JsonElement c, string where)
    {
        switch (c.ValueKind)
        {
            case JsonValueKind.Null:
                return null;
            case JsonValueKind.String:
                return c.GetString();
            case JsonValueKind.Array:
                var text = new System.Text.StringBuilder();
                foreach (JsonElement part in c.EnumerateArray())
                {
                    if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out JsonElement t) || !t.ValueEquals("text"))
                        throw new InvalidDataException($"{where}: only text content parts are supported");
                    text.Append(RequiredString(part, "text", where));
                }
                return text.ToString();
            default:
                throw new InvalidDataException($"{where}: 'content' must be a string, an array of text parts or null");
        }
    }

    private static string RequiredString(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new InvalidDataException($"{where}: missing string '{name}'");

    private static string? OptionalString(JsonElement e, string name, string where)
    {
        if (!e.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new InvalidDataException($"{where}: '{name}' must be a string");
    }
}
