// DeepSeek-V3.2 and DeepSeek-V4 prompt encoding: these releases ship a Python encoder instead of a Jinja template
// (V3.2: encoding/encoding_dsv32.py of deepseek-ai/DeepSeek-V3.2; V4: encoding/encoding_dsv4.py of DeepSeek-V4-Pro).
// Written from their format, checked against their own test cases (tests/SharpSeek.Tokenizer.Tests/Data/dsv32, dsv4).
//
// Both: BOS, the system prompt (+ "\n\n" + tool schemas + "\n\n" + response format), then the turns. Thinking mode
// opens the reply with <think> after the last user turn (</think> elsewhere and in chat mode); assistant turns after
// the last user turn carry REASONING</think>; earlier reasoning is dropped (drop_thinking). Tool calls are DSML:
//   \n\n<｜DSML｜BLOCK>\n<｜DSML｜invoke name="NAME">\n<｜DSML｜parameter name="K" string="true|false">V</｜DSML｜parameter>
//   ...\n</｜DSML｜invoke>\n...</｜DSML｜BLOCK>      (string values as they are, others as JSON; BLOCK below)
// V3.2 (BLOCK function_calls): user turns end <｜User｜>TEXT<｜Assistant｜> + <think> or </think>; a developer turn is a user
//   turn with its tools first and "# The user's message is: "; tool results follow the assistant turn as
//   \n\n<function_results>\n<result>R1</result>...\n</function_results>\n\n + <think> or </think>.
// V4 (BLOCK tool_calls): tool messages become <tool_result>R</tool_result> blocks of a user turn (sorted by the order of
//   the calls, joined by "\n\n" with any user text); the assistant opening follows the last message before an
//   assistant or latest_reminder turn; <｜latest_reminder｜>, quick-instruction task tokens and the maximum-effort
//   prefix; reasoning is kept in every turn when any message declares tools.
using System.Text;
using System.Text.Json;

namespace SharpSeek.Tokenizer;

public sealed partial class ChatTemplate
{
    /// <summary>The DSML markup token of V3.2 and V4 tool calls.</summary>
    public const string DsmlToken = "｜DSML｜";

    private const string LatestReminder = "<｜latest_reminder｜>";

    private const string V32ToolsTemplate = """
        ## Tools

        You have access to a set of tools you can use to answer the user's question.
        You can invoke functions by writing a "<｜DSML｜function_calls>" block like the following as part of your reply to the user:
        <｜DSML｜function_calls>
        <｜DSML｜invoke name="$FUNCTION_NAME">
        <｜DSML｜parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</｜DSML｜parameter>
        ...
        </｜DSML｜invoke>
        <｜DSML｜invoke name="$FUNCTION_NAME2">
        ...
        </｜DSML｜invoke>
        </｜DSML｜function_calls>

        String and scalar parameters should be specified as is without any escaping or quotes, while lists and objects should use JSON format. The "string" attribute should be set to "true" for string type parameters and "false" for other types (numbers, booleans, arrays, objects).

        If the thinking_mode is enabled, then after function results you should strongly consider outputting a thinking block. Here is an example:

        <｜DSML｜function_calls>
        ...
        </｜DSML｜function_calls>

        <function_results>
        ...
        </function_results>

        <think>...thinking about results</think>

        Here are the functions available in JSONSchema format:
        <functions>
        {SCHEMAS}
        </functions>

        """;

    private const string V4ToolsTemplate = """
        ## Tools

        You have access to a set of tools to help answer the user's question. You can invoke tools by writing a "<｜DSML｜tool_calls>" block like the following:

        <｜DSML｜tool_calls>
        <｜DSML｜invoke name="$TOOL_NAME">
        <｜DSML｜parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</｜DSML｜parameter>
        ...
        </｜DSML｜invoke>
        <｜DSML｜invoke name="$TOOL_NAME2">
        ...
        </｜DSML｜invoke>
        </｜DSML｜tool_calls>

        String parameters should be specified as is and set `string="true"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON format and set `string="false"`.

        If thinking_mode is enabled (triggered by <think>), you MUST output your complete reasoning inside <think>...</think> BEFORE any tool calls or final response.

        Otherwise, output directly after </think> with tool calls or final response.

        ### Available Tool Schemas

        {SCHEMAS}

        You MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.

        """;

    private const string ReasoningEffortMaxPrefix =
        "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n" +
        "You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root cause, rigorously stress-testing your logic against all potential paths, edge cases, and adversarial scenarios.\n" +
        "Explicitly write out your entire deliberation process, documenting every intermediate step, considered alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.\n\n";

    private const string ResponseFormatHeader = "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

    private static readonly Dictionary<string, string> V4TaskTokens = new(StringComparer.Ordinal)
    {
        ["action"] = "<｜action｜>",
        ["query"] = "<｜query｜>",
        ["authority"] = "<｜authority｜>",
        ["domain"] = "<｜domain｜>",
        ["title"] = "<｜title｜>",
        ["read_url"] = "<｜read_url｜>",
    };

    // ---------------------------------------------------------------- V3.2

    private string RenderV32(IReadOnlyList<ChatMessage> input, bool thinking, bool dropThinking)
    {
        List<ChatMessage> messages = [.. input];
        if (thinking && dropThinking)
            messages = DropEarlierThinking(messages, keepRoles: ["user", "system", "tool"]);
        int lastUser = LastUserIndex(messages);
        var sb = new StringBuilder(BosToken);
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage m = messages[i];
            string opening = i == lastUser && thinking ? ThinkStart : ThinkEnd;
            switch (m.Role)
            {
                case "system":
                    sb.Append(m.Content);
                    AppendToolsAndFormat(sb, m, V32ToolsTemplate);
                    break;
                case "developer":
                    if (string.IsNullOrEmpty(m.Content))
                        throw new ArgumentException($"message {i} (role 'developer') has no content");
                    sb.Append(User);
                    AppendToolsAndFormat(sb, m, V32ToolsTemplate);
                    sb.Append("\n\n# The user's message is: ").Append(m.Content).Append(Assistant).Append(opening);
                    break;
                case "user":
                    sb.Append(User).Append(Required(m, i)).Append(Assistant).Append(opening);
                    break;
                case "tool":
                    int call = i - 1;
                    while (call >= 0 && messages[call].Role == "tool")
                        call--;
                    IReadOnlyList<ToolCall>? calls = call >= 0 && messages[call].Role == "assistant" ? messages[call].ToolCalls : null;
                    int order = i - call;
                    if (calls is null || calls.Count < order)
                        throw new ArgumentException($"message {i} (role 'tool') answers no tool call: the assistant turn before it has fewer calls than tool results");
                    if (order == 1)
                        sb.Append("\n\n<function_results>");
                    sb.Append("\n<result>").Append(Required(m, i)).Append("</result>");
                    if (order == calls.Count)
                        sb.Append("\n</function_results>\n\n").Append(i >= lastUser && thinking ? ThinkStart : ThinkEnd);
                    break;
                case "assistant":
                    bool hasCalls = m.ToolCalls is { Count: > 0 };
                    if (thinking && i > lastUser)
                    {
                        if (string.IsNullOrEmpty(m.ReasoningContent) && !hasCalls)
                            throw new ArgumentException($"message {i} (role 'assistant'): in thinking mode an assistant turn after the last user message needs reasoning_content or tool_calls");
                        sb.Append(m.ReasoningContent).Append(ThinkEnd);
                    }
                    sb.Append(m.Content);
                    if (hasCalls)
                        AppendDsmlCalls(sb, m.ToolCalls!, "function_calls", i, lenient: false);
                    sb.Append(EndOfSentence);
                    break;
                default:
                    throw new ArgumentException($"message {i}: role '{m.Role}' is not system, developer, user, tool or assistant (the V3.2 encoder has no other roles)");
            }
        }
        return sb.ToString();
    }

    // ---------------------------------------------------------------- V4

    // a message after merge_tool_messages: tool results are blocks of a user turn
    private sealed class V4Message(ChatMessage source)
    {
        public ChatMessage Source { get; set; } = source;
        public List<(string? ToolUseId, string Text, bool IsToolResult)>? Blocks { get; set; }
        public string Role => Source.Role;
    }

    private string RenderV4(IReadOnlyList<ChatMessage> input, bool thinking, bool dropThinking, ReasoningEffort? effort)
    {
        List<V4Message> messages = MergeToolMessages(input);
        SortToolResults(messages);
        bool drop = dropThinking && !messages.Any(m => m.Source.Tools is { Count: > 0 });
        if (thinking && drop)
        {
            int last = LastUserIndex(messages.Select(m => m.Source).ToList());
            var kept = new List<V4Message>(messages.Count);
            for (int i = 0; i < messages.Count; i++)
            {
                V4Message m = messages[i];
                if (m.Role is "user" or "system" or "tool" or "latest_reminder" or "direct_search_results" || i >= last)
                    kept.Add(m);
                else if (m.Role == "assistant")
                    kept.Add(new V4Message(m.Source with { ReasoningContent = null }) { Blocks = m.Blocks });
                // developer turns (and other roles) before the last user turn are dropped
            }
            messages = kept;
        }

        int lastUser = LastUserIndex(messages.Select(m => m.Source).ToList());
        var sb = new StringBuilder(BosToken);
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage m = messages[i].Source;
            if (i == 0 && thinking && effort == Tokenizer.ReasoningEffort.Max)
                sb.Append(ReasoningEffortMaxPrefix);
            switch (m.Role)
            {
                case "system":
                    sb.Append(m.Content);
                    AppendToolsAndFormat(sb, m, V4ToolsTemplate);
                    break;
                case "developer":
                    if (string.IsNullOrEmpty(m.Content))
                        throw new ArgumentException($"message {i} (role 'developer') has no content");
                    sb.Append(User).Append(m.Content);
                    AppendToolsAndFormat(sb, m, V4ToolsTemplate);
                    break;
                case "user":
                    sb.Append(User);
                    if (messages[i].Blocks is { Count: > 0 } blocks)
                    {
                        for (int b = 0; b < blocks.Count; b++)
                        {
                            if (b > 0)
                                sb.Append("\n\n");
                            if (blocks[b].IsToolResult)
                                sb.Append("<tool_result>").Append(blocks[b].Text).Append("</tool_result>");
                            else
                                sb.Append(blocks[b].Text);
                        }
                    }
                    else
                        sb.Append(m.Content);
                    break;
                case "latest_reminder":
                    sb.Append(LatestReminder).Append(Required(m, i));
                    break;
                case "assistant":
                    bool prevHasTask = i > 0 && messages[i - 1].Source.Task is not null;
                    if (thinking && !prevHasTask && (!drop || i > lastUser))
                        sb.Append(m.ReasoningContent).Append(ThinkEnd);
                    sb.Append(m.Content);
                    if (m.ToolCalls is { Count: > 0 })
                        AppendDsmlCalls(sb, m.ToolCalls, "tool_calls", i, lenient: true);
                    if (!m.WithoutEos)
                        sb.Append(EndOfSentence);
                    break;
                default:
                    throw new ArgumentException($"message {i}: role '{m.Role}' is not system, developer, user, tool, latest_reminder or assistant (the V4 encoder has no other roles)");
            }

            // the turn that follows: nothing unless the next message is an assistant or latest_reminder turn (or none)
            if (i + 1 < messages.Count && messages[i + 1].Role is not ("assistant" or "latest_reminder"))
                continue;
            if (m.Task is string task)
            {
                if (!V4TaskTokens.TryGetValue(task, out string? token))
                    throw new ArgumentException($"message {i}: task '{task}' is not one of {string.Join(", ", V4TaskTokens.Keys)}");
                if (task == "action")
                    sb.Append(Assistant).Append(thinking ? ThinkStart : ThinkEnd);
                sb.Append(token);
            }
            else if (m.Role is "user" or "developer")
            {
                bool open = thinking && (!drop || i >= lastUser);
                sb.Append(Assistant).Append(open ? ThinkStart : ThinkEnd);
            }
        }
        return sb.ToString();
    }

    // tool messages -> tool_result blocks of a user turn; a user message after such a turn joins it as a text block
    // (unless that turn has a task); other messages are kept
    private static List<V4Message> MergeToolMessages(IReadOnlyList<ChatMessage> input)
    {
        var merged = new List<V4Message>(input.Count);
        foreach (ChatMessage m in input)
        {
            V4Message? last = merged.Count > 0 ? merged[^1] : null;
            bool lastIsMergedUser = last is { Role: "user", Blocks: not null };
            if (m.Role == "tool")
            {
                var block = (m.ToolCallId ?? "", m.Content ?? "", true);
                if (lastIsMergedUser)
                    last!.Blocks!.Add(block);
                else
                    merged.Add(new V4Message(new ChatMessage("user", null)) { Blocks = [block] });
            }
            else if (m.Role == "user")
            {
                var block = ((string?)null, m.Content ?? "", false);
                if (lastIsMergedUser && last!.Source.Task is null)
                    last.Blocks!.Add(block);
                else
                    merged.Add(new V4Message(new ChatMessage("user", m.Content) { Task = m.Task, WithoutEos = m.WithoutEos }) { Blocks = [block] });
            }
            else
                merged.Add(new V4Message(m));
        }
        return merged;
    }

    // tool results of a user turn in the order of the calls of the last assistant turn that made calls (stable)
    private static void SortToolResults(List<V4Message> messages)
    {
        Dictionary<string, int> order = [];
        foreach (V4Message m in messages)
        {
            if (m.Role == "assistant" && m.Source.ToolCalls is { Count: > 0 } calls)
            {
                order = [];
                for (int k = 0; k < calls.Count; k++)
                {
                    if (!string.IsNullOrEmpty(calls[k].Id))
                        order[calls[k].Id!] = k;
                }
            }
            else if (m.Role == "user" && m.Blocks is { } blocks)
            {
                var results = blocks.Where(b => b.IsToolResult).ToList();
                if (results.Count < 2 || order.Count == 0)
                    continue;
                var sorted = results.OrderBy(b => order.GetValueOrDefault(b.ToolUseId ?? "", 0)).ToList(); // stable
                int next = 0;
                for (int b = 0; b < blocks.Count; b++)
                {
                    if (blocks[b].IsToolResult)
                        blocks[b] = sorted[next++];
                }
            }
        }
    }

    // ---------------------------------------------------------------- shared

    private static int LastUserIndex(IReadOnlyList<ChatMessage> messages)
    {
        for (int i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i].Role is "user" or "developer")
                return i;
        }
        return -1;
    }

    // V3.2's drop_thinking_messages: before the last user turn, assistant turns lose their reasoning and roles outside
    // keepRoles are dropped
    private static List<ChatMessage> DropEarlierThinking(List<ChatMessage> messages, string[] keepRoles)
    {
        int last = LastUserIndex(messages);
        var kept = new List<ChatMessage>(messages.Count);
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage m = messages[i];
            if (keepRoles.Contains(m.Role) || i >= last)
                kept.Add(m);
            else if (m.Role == "assistant")
                kept.Add(m with { ReasoningContent = null });
        }
        return kept;
    }

    private static void AppendToolsAndFormat(StringBuilder sb, ChatMessage m, string toolsTemplate)
    {
        if (m.Tools is { Count: > 0 } tools)
        {
            string schemas = string.Join("\n", tools.Select(t => PythonJson.Dumps(t.Function)));
            sb.Append("\n\n").Append(toolsTemplate.Replace("{SCHEMAS}", schemas, StringComparison.Ordinal));
        }
        if (m.ResponseFormat is JsonElement format)
            sb.Append("\n\n").Append(ResponseFormatHeader).Append(PythonJson.Dumps(format));
    }

    private static void AppendDsmlCalls(StringBuilder sb, IReadOnlyList<ToolCall> calls, string block, int index, bool lenient)
    {
        sb.Append("\n\n<").Append(DsmlToken).Append(block).Append(">\n");
        for (int k = 0; k < calls.Count; k++)
        {
            if (k > 0)
                sb.Append('\n');
            sb.Append('<').Append(DsmlToken).Append("invoke name=\"").Append(calls[k].Name).Append("\">\n");
            AppendDsmlArguments(sb, calls[k].Arguments, lenient, $"message {index}: tool_calls[{k}].function.arguments");
            sb.Append("\n</").Append(DsmlToken).Append("invoke>");
        }
        sb.Append("\n</").Append(DsmlToken).Append(block).Append('>');
    }

    // one <｜DSML｜parameter> line per key of the JSON object: strings as they are (string="true"), other values as JSON;
    // V4 (lenient) wraps arguments that are not JSON as {"arguments": TEXT}; a repeated key keeps its first place and
    // its last value (as Python's json.loads)
    internal static void AppendDsmlArguments(StringBuilder sb, string arguments, bool lenient, string where)
    {
        List<(string Key, string Value, bool IsString)> items = [];
        JsonDocument? doc = null;
        try
        {
            doc = JsonDocument.Parse(arguments);
        }
        catch (JsonException e)
        {
            if (!lenient)
                throw new ArgumentException($"{where}: not valid JSON ({e.Message}); DSML tool calls need a JSON object");
        }
        using (doc)
        {
            if (doc is null)
                items.Add(("arguments", arguments, true));
            else if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"{where}: expected a JSON object, got {doc.RootElement.ValueKind}");
            else
            {
                foreach (JsonProperty p in doc.RootElement.EnumerateObject())
                {
                    bool isString = p.Value.ValueKind == JsonValueKind.String;
                    var item = (p.Name, isString ? p.Value.GetString()! : PythonJson.Dumps(p.Value), isString);
                    int at = items.FindIndex(x => x.Key == p.Name);
                    if (at >= 0)
                        items[at] = item;
                    else
                        items.Add(item);
                }
            }
        }
        for (int k = 0; k < items.Count; k++)
        {
            if (k > 0)
                sb.Append('\n');
            sb.Append('<').Append(DsmlToken).Append("parameter name=\"").Append(items[k].Key)
              .Append("\" string=\"").Append(items[k].IsString ? "true" : "false").Append("\">")
              .Append(items[k].Value).Append("</").Append(DsmlToken).Append("parameter>");
        }
    }
}
