// The DeepSeek chat templates written out in C#: the Jinja `chat_template` of DeepSeek-V3's and DeepSeek-R1's
// tokenizer_config.json, branch for branch, quirks included (both are rendered by transformers with
// trim_blocks and lstrip_blocks; the templates have no text outside tags, so whitespace control changes nothing).
//
// V3:  {{bos_token}} + the system messages joined by "\n\n", then per message
//   user                          <｜User｜>CONTENT
//   assistant, content null       per tool call: the first call of the conversation opens with
//                                 <｜Assistant｜><｜tool▁calls▁begin｜>, every later one (even in a later turn: the
//                                 flag is never reset) starts with "\n" and ends with <｜tool▁calls▁end｜><｜end▁of▁sentence｜>
//   assistant, content            after tool output: <｜tool▁outputs▁end｜>CONTENT<｜end▁of▁sentence｜>
//                                 else <｜Assistant｜>CONTENT<｜end▁of▁sentence｜> (its tool_calls are ignored)
//   tool                          the first of the conversation: <｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>...,
//                                 every later one "\n<｜tool▁output▁begin｜>..." (this flag is never reset either)
//   end                           <｜tool▁outputs▁end｜> after a tool message; the generation prompt <｜Assistant｜>
//                                 unless the last message was a tool message
// R1 (updated DeepSeek-R1 template) differs in:
//   assistant with tool_calls     <｜Assistant｜>[CONTENT]<｜tool▁calls▁begin｜> before the first call of the conversation,
//                                 later calls "\n"-separated, and every such turn ends <｜tool▁calls▁end｜><｜end▁of▁sentence｜>
//   assistant without tool_calls  content after the last </think> (earlier reasoning dropped), except right after tool output
//   later tool outputs            no "\n" before <｜tool▁output▁begin｜>
//   generation prompt             <｜Assistant｜><think>\n
// V3.1 (ChatTemplate.V31.cs), V3.2 and V4 (ChatTemplate.Dsml.cs) have their own renderers.
using System.Text;
using System.Text.Json;

namespace SharpSeek.Tokenizer;

/// <summary>Which DeepSeek chat template to render.</summary>
public enum ChatTemplateKind
{
    /// <summary>DeepSeek-V3 (tokenizer_config.json of deepseek-ai/DeepSeek-V3).</summary>
    DeepSeekV3,

    /// <summary>DeepSeek-R1: reasoning stripped from earlier turns, the generation prompt opens a &lt;think&gt; block.</summary>
    DeepSeekR1,

    /// <summary>DeepSeek-V3.1 / V3.1-Terminus: hybrid thinking (the reply opens with &lt;think&gt; or &lt;/think&gt;),
    /// tool calls as NAME&lt;｜tool▁sep｜&gt;ARGUMENTS (the Jinja of the V3.1 release's tokenizer_config.json).</summary>
    DeepSeekV31,

    /// <summary>DeepSeek-V3.2 / V3.2-Exp: DeepSeek's Python encoder (encoding_dsv32.py): hybrid thinking, tools in the
    /// system prompt, DSML tool calls in a &lt;｜DSML｜function_calls&gt; block, results in &lt;function_results&gt;.</summary>
    DeepSeekV32,

    /// <summary>DeepSeek-V4: DeepSeek's Python encoder (encoding_dsv4.py): hybrid thinking, DSML tool calls in a
    /// &lt;｜DSML｜tool_calls&gt; block, tool results merged into user turns, quick-instruction tasks.</summary>
    DeepSeekV4,
}

/// <summary>Renders chat messages into the prompt text of a DeepSeek model, exactly as its Jinja chat template does.</summary>
public sealed partial class ChatTemplate
{
    private const string User = "<｜User｜>";
    private const string Assistant = "<｜Assistant｜>";
    private const string EndOfSentence = "<｜end▁of▁sentence｜>";
    private const string CallsBegin = "<｜tool▁calls▁begin｜>";
    private const string CallsEnd = "<｜tool▁calls▁end｜>";
    private const string CallBegin = "<｜tool▁call▁begin｜>";
    private const string CallEnd = "<｜tool▁call▁end｜>";
    private const string Sep = "<｜tool▁sep｜>";
    private const string OutputsBegin = "<｜tool▁outputs▁begin｜>";
    private const string OutputsEnd = "<｜tool▁outputs▁end｜>";
    private const string OutputBegin = "<｜tool▁output▁begin｜>";
    private const string OutputEnd = "<｜tool▁output▁end｜>";

    /// <summary>The BOS text DeepSeek's tokenizer_config.json names.</summary>
    public const string DefaultBosToken = "<｜begin▁of▁sentence｜>";

    private ChatTemplate(ChatTemplateKind kind, string bosToken)
    {
        Kind = kind;
        BosToken = bosToken;
    }

    /// <summary>The template rendered.</summary>
    public ChatTemplateKind Kind { get; }

    /// <summary>The text of <c>bos_token</c> the template starts with.</summary>
    public string BosToken { get; }

    /// <summary>A template of the given kind.</summary>
    public static ChatTemplate Create(ChatTemplateKind kind, string bosToken = DefaultBosToken)
    {
        ArgumentNullException.ThrowIfNull(bosToken);
        if (!Enum.IsDefined(kind))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown chat template");
        return new ChatTemplate(kind, bosToken);
    }

    /// <summary>The template of a model directory's tokenizer_config.json (its <c>chat_template</c> recognised by
    /// <see cref="DetectKind(string?, string?)"/>, and its <c>bos_token</c>), or <paramref name="overrideKind"/> when given.</summary>
    /// <param name="config">tokenizer_config.json, or null.</param>
    /// <param name="overrideKind">The template to use whatever the config says (<c>--template</c>).</param>
    /// <param name="modelType">config.json's <c>model_type</c>: V3.2 and V4 ship no Jinja template and are recognised by it.</param>
    public static ChatTemplate FromConfig(TokenizerConfig? config, ChatTemplateKind? overrideKind = null, string? modelType = null) =>
        Create(overrideKind ?? DetectKind(config?.ChatTemplate, modelType), config?.BosToken ?? DefaultBosToken);

    /// <summary>Recognises a Jinja chat template: DeepSeek-V3.1's when it has the <c>thinking</c> toggle (the reply
    /// opens with <c>&lt;/think&gt;</c> or <c>&lt;think&gt;</c>), DeepSeek-R1's when its generation prompt opens
    /// <c>&lt;think&gt;\n</c> or it strips reasoning up to <c>&lt;/think&gt;</c>, else DeepSeek-V3's (also for null).</summary>
    public static ChatTemplateKind DetectKind(string? jinjaSource) => DetectKind(jinjaSource, null);

    /// <summary>Recognises the template from the Jinja source and config.json's <c>model_type</c>: a model without a
    /// Jinja template whose type is <c>deepseek_v32</c> or <c>deepseek_v4</c> uses DeepSeek's encoder of that release;
    /// otherwise as <see cref="DetectKind(string?)"/>.</summary>
    public static ChatTemplateKind DetectKind(string? jinjaSource, string? modelType)
    {
        if (jinjaSource is null)
        {
            return modelType switch
            {
                "deepseek_v32" => ChatTemplateKind.DeepSeekV32,
                "deepseek_v4" => ChatTemplateKind.DeepSeekV4,
                _ => ChatTemplateKind.DeepSeekV3,
            };
        }
        if (jinjaSource.Contains("｜DSML｜", StringComparison.Ordinal))
            return jinjaSource.Contains("function_calls", StringComparison.Ordinal) ? ChatTemplateKind.DeepSeekV32 : ChatTemplateKind.DeepSeekV4;
        if (jinjaSource.Contains("thinking is defined", StringComparison.Ordinal)) // V3.1's toggle (llama.cpp's copy too)
            return ChatTemplateKind.DeepSeekV31;
        bool r1 = jinjaSource.Contains("<｜Assistant｜><think>\\n", StringComparison.Ordinal)
                  || jinjaSource.Contains("<｜Assistant｜><think>\n", StringComparison.Ordinal)
                  || jinjaSource.Contains("split('</think>')", StringComparison.Ordinal);
        return r1 ? ChatTemplateKind.DeepSeekR1 : ChatTemplateKind.DeepSeekV3;
    }

    /// <summary>The name <c>--template</c> takes for a kind: v3, r1, v3.1, v3.2, v4.</summary>
    public static string NameOf(ChatTemplateKind kind) => kind switch
    {
        ChatTemplateKind.DeepSeekV3 => "v3",
        ChatTemplateKind.DeepSeekR1 => "r1",
        ChatTemplateKind.DeepSeekV31 => "v3.1",
        ChatTemplateKind.DeepSeekV32 => "v3.2",
        ChatTemplateKind.DeepSeekV4 => "v4",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown chat template"),
    };

    /// <summary>The template names <see cref="ParseName"/> accepts, for messages.</summary>
    public const string Names = "v3, r1, v3.1, v3.2 or v4";

    /// <summary>Parses a <c>--template</c> name (v3, r1, v3.1 (also v3.1-terminus), v3.2 (also v3.2-exp), v4).</summary>
    /// <exception cref="ArgumentException">An unknown name (the message names the option and the choices).</exception>
    public static ChatTemplateKind ParseName(string name, string option = "--template")
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "v3" => ChatTemplateKind.DeepSeekV3,
            "r1" => ChatTemplateKind.DeepSeekR1,
            "v3.1" or "v3.1-terminus" => ChatTemplateKind.DeepSeekV31,
            "v3.2" or "v3.2-exp" => ChatTemplateKind.DeepSeekV32,
            "v4" => ChatTemplateKind.DeepSeekV4,
            _ => throw new ArgumentException($"{option}: '{name}' is not {Names}"),
        };
    }

    /// <summary>Whether the template has a thinking toggle (V3.1, V3.2, V4).</summary>
    public bool SupportsThinking => Kind is ChatTemplateKind.DeepSeekV31 or ChatTemplateKind.DeepSeekV32 or ChatTemplateKind.DeepSeekV4;

    /// <summary>Thinking mode when <see cref="ChatRenderOptions.Thinking"/> is null: off for V3.1 and V3.2 (their
    /// templates' default), on for V4 (DeepSeek's API default for V4); R1 always thinks, V3 never.</summary>
    public bool DefaultThinking => Kind is ChatTemplateKind.DeepSeekV4 or ChatTemplateKind.DeepSeekR1;

    /// <summary>Whether thinking is on for these options.</summary>
    /// <exception cref="ArgumentException">Thinking is set for a template without the toggle.</exception>
    public bool IsThinking(ChatRenderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Thinking is not null && !SupportsThinking)
            throw new ArgumentException($"thinking: the {NameOf(Kind)} template has no thinking toggle " +
                                        $"({(Kind == ChatTemplateKind.DeepSeekR1 ? "R1 always thinks" : "V3 never thinks")}; " +
                                        $"v3.1, v3.2 and v4 have one)");
        return options.Thinking ?? DefaultThinking;
    }

    /// <summary>Whether the model's reply starts inside a think block when the prompt ends with the generation prompt:
    /// R1 always, V3.1/V3.2/V4 in thinking mode (the prompt ends with &lt;think&gt;).</summary>
    public bool StartsInReasoning(ChatRenderOptions options) => Kind switch
    {
        ChatTemplateKind.DeepSeekR1 => true,
        ChatTemplateKind.DeepSeekV3 => false,
        _ => IsThinking(options),
    };

    /// <summary>The tool-call markup the model writes with this template.</summary>
    public ToolCallFormat ToolCallFormat => Kind switch
    {
        ChatTemplateKind.DeepSeekV31 => ToolCallFormat.DeepSeekV31,
        ChatTemplateKind.DeepSeekV32 => ToolCallFormat.DsmlV32,
        ChatTemplateKind.DeepSeekV4 => ToolCallFormat.DsmlV4,
        _ => ToolCallFormat.DeepSeekV3,
    };

    /// <summary>Renders the messages; with <paramref name="addGenerationPrompt"/>, the text that makes the model
    /// answer as the assistant is appended (unless the last message is a tool result, as in the Jinja).</summary>
    /// <exception cref="ArgumentException">A message lacks the content its branch concatenates (the Jinja fails there too).</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) =>
        Render(messages, new ChatRenderOptions { AddGenerationPrompt = addGenerationPrompt });

    /// <summary>Renders the messages with the given options (generation prompt, thinking, tools, reasoning effort).</summary>
    /// <exception cref="ArgumentException">A message lacks the content its branch needs, a tool call's arguments are
    /// not the JSON object the encoder needs, or an option does not apply to this template (the message names it).</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, ChatRenderOptions options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(options);
        bool thinking = IsThinking(options);
        return Kind switch
        {
            ChatTemplateKind.DeepSeekV31 => RenderV31(messages, options.AddGenerationPrompt, thinking),
            ChatTemplateKind.DeepSeekV32 => RenderV32(WithTools(messages, options.Tools), thinking, options.DropThinking),
            ChatTemplateKind.DeepSeekV4 => RenderV4(WithTools(messages, options.Tools), thinking, options.DropThinking, options.ReasoningEffort),
            _ => RenderV3OrR1(messages, options.AddGenerationPrompt),
        };
    }

    private string RenderV3OrR1(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        sb.Append(BosToken);
        bool firstSystem = true;
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage m = messages[i];
            if (m.Role != "system")
                continue;
            if (!firstSystem)
                sb.Append("\n\n");
            sb.Append(Required(m, i));
            firstSystem = false;
        }

        bool isFirst = false, isTool = false, isOutputFirst = true;
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage m = messages[i];
            switch (m.Role)
            {
                case "user":
                    isTool = false;
                    sb.Append(User).Append(Required(m, i));
                    break;
                case "assistant" when Kind == ChatTemplateKind.DeepSeekV3:
                    if (m.Content is null)
                    {
                        isTool = false;
                        foreach (ToolCall call in m.ToolCalls ?? [])
                        {
                            if (!isFirst)
                            {
                                sb.Append(Assistant).Append(CallsBegin);
                                AppendCall(sb, call);
                                isFirst = true;
                            }
                            else
                            {
                                sb.Append('\n');
                                AppendCall(sb, call);
                                sb.Append(CallsEnd).Append(EndOfSentence);
                            }
                        }
                    }
                    else if (isTool)
                    {
                        sb.Append(OutputsEnd).Append(m.Content).Append(EndOfSentence);
                        isTool = false;
                    }
                    else
                    {
                        sb.Append(Assistant).Append(m.Content).Append(EndOfSentence);
                    }
                    break;
                case "assistant":
                    if (m.ToolCalls is not null)
                    {
                        isTool = false;
                        foreach (ToolCall call in m.ToolCalls)
                        {
                            if (!isFirst)
                            {
                                sb.Append(Assistant).Append(m.Content).Append(CallsBegin);
                                AppendCall(sb, call);
                                isFirst = true;
                            }
                            else
                            {
                                sb.Append('\n');
                                AppendCall(sb, call);
                            }
                        }
                        sb.Append(CallsEnd).Append(EndOfSentence);
                    }
                    else if (isTool)
                    {
                        sb.Append(OutputsEnd).Append(Required(m, i)).Append(EndOfSentence);
                        isTool = false;
                    }
                    else
                    {
                        sb.Append(Assistant).Append(AfterReasoning(Required(m, i))).Append(EndOfSentence);
                    }
                    break;
                case "tool":
                    isTool = true;
                    if (isOutputFirst)
                    {
                        sb.Append(OutputsBegin).Append(OutputBegin).Append(Required(m, i)).Append(OutputEnd);
                        isOutputFirst = false;
                    }
                    else
                    {
                        if (Kind == ChatTemplateKind.DeepSeekV3)
                            sb.Append('\n');
                        sb.Append(OutputBegin).Append(Required(m, i)).Append(OutputEnd);
                    }
                    break;
            }
        }
        if (isTool)
            sb.Append(OutputsEnd);
        if (addGenerationPrompt && !isTool)
            sb.Append(Kind == ChatTemplateKind.DeepSeekR1 ? Assistant + "<think>\n" : Assistant);
        return sb.ToString();
    }

    // tool['type'] + '<｜tool▁sep｜>' + name + '\n' + '```json' + '\n' + arguments + '\n' + '```' + '<｜tool▁call▁end｜>'
    private static void AppendCall(StringBuilder sb, ToolCall call) =>
        sb.Append(CallBegin).Append(call.Type).Append(Sep).Append(call.Name)
          .Append("\n```json\n").Append(call.Arguments).Append("\n```").Append(CallEnd);

    // content.split('</think>')[-1]
    private static string AfterReasoning(string content)
    {
        int end = content.LastIndexOf("</think>", StringComparison.Ordinal);
        return end < 0 ? content : content[(end + "</think>".Length)..];
    }

    // request-level tools go on the first message when it is a system message without tools, else on a new empty
    // system message put first (DeepSeek's encoder tests attach them to messages[0], the system prompt)
    private static IReadOnlyList<ChatMessage> WithTools(IReadOnlyList<ChatMessage> messages, IReadOnlyList<ToolDefinition>? tools)
    {
        if (tools is null || tools.Count == 0)
            return messages;
        if (messages.Count > 0 && messages[0].Role == "system" && messages[0].Tools is null)
            return [messages[0] with { Tools = tools }, .. messages.Skip(1)];
        return [new ChatMessage("system", "") { Tools = tools }, .. messages];
    }

    private static string Required(ChatMessage m, int index) =>
        m.Content ?? throw new ArgumentException($"message {index} (role '{m.Role}') has no content");
}
