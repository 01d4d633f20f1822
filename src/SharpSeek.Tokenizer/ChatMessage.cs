// OpenAI-style chat messages: role, content, reasoning_content, tool_calls and tool_call_id, with a reader for
// the JSON array form used by chat APIs ([{"role": "user", "content": "..."}, ...]). DeepSeek's own fields are kept
// too: "prefix" (V3.1's prefix completion), and for the V3.2/V4 encoders "tools" and "response_format" on a system or
// developer message, "task" (V4's quick-instruction token) and "wo_eos" (an assistant turn left open).
using System.Text.Json;

namespace SharpSeek.Tokenizer;

/// <summary>A function call made by the assistant (OpenAI <c>tool_calls[i]</c>).</summary>
/// <param name="Id">The call id (<c>id</c>), or null.</param>
/// <param name="Name">The function name (<c>function.name</c>).</param>
/// <param name="Arguments">The arguments as a JSON string (<c>function.arguments</c>).</param>
/// <param name="Type">The call type (<c>type</c>), "function".</param>
public sealed record ToolCall(string? Id, string Name, string Arguments, string Type = "function");

/// <summary>A tool the model may call (OpenAI <c>tools[i]</c>): its <c>function</c> object as given (name,
/// description, parameters; key order kept, since the V3.2/V4 encoders print it as JSON).</summary>
public sealed class ToolDefinition
{
    private ToolDefinition(string name, JsonElement function)
    {
        Name = name;
        Function = function;
    }

    /// <summary>The function name (<c>function.name</c>).</summary>
    public string Name { get; }

    /// <summary>The <c>function</c> object (a detached clone).</summary>
    public JsonElement Function { get; }

    /// <summary>A tool from its <c>function</c> object.</summary>
    /// <exception cref="InvalidDataException">The object has no string <c>name</c>.</exception>
    public static ToolDefinition FromFunction(JsonElement function, string where = "tool")
    {
        if (function.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where}: 'function' must be a JSON object");
        if (!function.TryGetProperty("name", out JsonElement n) || n.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{where}: missing string 'function.name'");
        try
        {
            TokenizerJson.Unescape(function); // rendered later (names and strings re-read): refuse bad text now, naming the tool
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidDataException($"{where}: a name or string is not valid text: {e.Message}", e);
        }
        return new ToolDefinition(n.GetString()!, function.Clone());
    }

    /// <summary>Reads an OpenAI <c>tools</c> array: <c>[{"type": "function", "function": {...}}, ...]</c>.</summary>
    /// <exception cref="InvalidDataException">The value is not such an array (the message names the item).</exception>
    public static IReadOnlyList<ToolDefinition> ParseArray(JsonElement tools, string where = "tools")
    {
        if (tools.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{where} must be an array");
        var list = new List<ToolDefinition>(tools.GetArrayLength());
        int i = 0;
        foreach (JsonElement t in tools.EnumerateArray())
        {
            string at = $"{where}[{i++}]";
            if (t.ValueKind != JsonValueKind.Object || !t.TryGetProperty("function", out JsonElement f))
                throw new InvalidDataException($"{at}: expected an object with a 'function' object");
            list.Add(FromFunction(f, at));
        }
        return list;
    }

    /// <summary>Reads an OpenAI <c>tools</c> array from JSON text.</summary>
    /// <exception cref="InvalidDataException">The JSON is invalid or not a tools array.</exception>
    public static IReadOnlyList<ToolDefinition> ParseJson(string json, string source = "tools")
    {
        ArgumentNullException.ThrowIfNull(json);
        using JsonDocument doc = TokenizerJson.ParseChecked(json, source);
        return ParseArray(doc.RootElement, source);
    }
}

/// <summary>Messages and the request-level tools of a chat request (or of a messages file).</summary>
/// <param name="Messages">The messages.</param>
/// <param name="Tools">The request's <c>tools</c>, or null.</param>
public sealed record ChatConversation(IReadOnlyList<ChatMessage> Messages, IReadOnlyList<ToolDefinition>? Tools);

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

    /// <summary>An assistant message the model is to continue (<c>prefix</c>, DeepSeek's prefix completion; V3.1's
    /// template opens &lt;think&gt; before it in thinking mode).</summary>
    public bool Prefix { get; init; }

    /// <summary>Tools declared on a system or developer message (<c>tools</c>; V3.2/V4 encoders), or null.</summary>
    public IReadOnlyList<ToolDefinition>? Tools { get; init; }

    /// <summary>A response schema on a system or developer message (<c>response_format</c>; V3.2/V4 encoders), or null.</summary>
    public JsonElement? ResponseFormat { get; init; }

    /// <summary>V4's quick-instruction task (<c>task</c>: action, query, authority, domain, title, read_url), or null.</summary>
    public string? Task { get; init; }

    /// <summary>V4: the assistant turn is rendered without its end-of-sentence token (<c>wo_eos</c>).</summary>
    public bool WithoutEos { get; init; }

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
    public static IReadOnlyList<ChatMessage> ParseJson(string json, string source = "messages") =>
        ParseConversationJson(json, source).Messages;

    /// <summary>Reads a JSON file holding a message array or a chat request object (<c>messages</c> and <c>tools</c>).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The JSON is invalid or a message or tool is malformed (the message names it).</exception>
    public static ChatConversation LoadConversationJson(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"messages file not found: {path}", path);
        return ParseConversationJson(File.ReadAllText(path), path);
    }

    /// <summary>Parses a message array, or a chat request object with <c>messages</c> and optional <c>tools</c>.</summary>
    /// <exception cref="InvalidDataException">The JSON is invalid or a message or tool is malformed.</exception>
    public static ChatConversation ParseConversationJson(string json, string source = "messages")
    {
        ArgumentNullException.ThrowIfNull(json);
        using JsonDocument doc = TokenizerJson.ParseChecked(json, source);
        JsonElement root = doc.RootElement;
        IReadOnlyList<ToolDefinition>? tools = null;
        if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("messages", out JsonElement inner))
        {
            // a whole chat request
            if (root.TryGetProperty("tools", out JsonElement t) && t.ValueKind != JsonValueKind.Null)
                tools = ToolDefinition.ParseArray(t, $"{source}: tools");
            root = inner;
        }
        if (root.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{source}: expected a JSON array of messages");
        var messages = new List<ChatMessage>(root.GetArrayLength());
        int i = 0;
        foreach (JsonElement m in root.EnumerateArray())
            messages.Add(ParseMessage(m, $"{source}: message {i++}"));
        return new ChatConversation(messages, tools);
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
        IReadOnlyList<ToolDefinition>? tools = null;
        if (m.TryGetProperty("tools", out JsonElement td) && td.ValueKind != JsonValueKind.Null)
            tools = ToolDefinition.ParseArray(td, $"{where}: tools");
        JsonElement? responseFormat = m.TryGetProperty("response_format", out JsonElement rf) && rf.ValueKind != JsonValueKind.Null
            ? rf.Clone() : null;
        return new ChatMessage(role, content)
        {
            ReasoningContent = OptionalString(m, "reasoning_content", where),
            ToolCalls = calls,
            ToolCallId = OptionalString(m, "tool_call_id", where),
            Prefix = OptionalBool(m, "prefix", where),
            Tools = tools,
            ResponseFormat = responseFormat,
            Task = OptionalString(m, "task", where),
            WithoutEos = OptionalBool(m, "wo_eos", where),
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

    private static bool OptionalBool(JsonElement e, string name, string where)
    {
        if (!e.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
            return false;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{where}: '{name}' must be true or false"),
        };
    }

    private static string? OptionalString(JsonElement e, string name, string where)
    {
        if (!e.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
            return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new InvalidDataException($"{where}: '{name}' must be a string");
    }
}
