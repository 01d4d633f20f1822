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
using System.Text;

namespace SharpSeek.Tokenizer;

/// <summary>Which DeepSeek chat template to render.</summary>
public enum ChatTemplateKind
{
    /// <summary>DeepSeek-V3 (tokenizer_config.json of deepseek-ai/DeepSeek-V3).</summary>
    DeepSeekV3,

    /// <summary>DeepSeek-R1: reasoning stripped from earlier turns, the generation prompt opens a &lt;think&gt; block.</summary>
    DeepSeekR1,
}

/// <summary>Renders chat messages into the prompt text of a DeepSeek model, exactly as its Jinja chat template does.</summary>
public sealed class ChatTemplate
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
    /// <see cref="DetectKind"/>, and its <c>bos_token</c>), or <paramref name="overrideKind"/> when given.</summary>
    public static ChatTemplate FromConfig(TokenizerConfig? config, ChatTemplateKind? overrideKind = null) =>
        Create(overrideKind ?? DetectKind(config?.ChatTemplate), config?.BosToken ?? DefaultBosToken);

    /// <summary>Recognises a Jinja chat template: DeepSeek-R1's when its generation prompt opens
    /// <c>&lt;think&gt;</c> or it strips reasoning up to <c>&lt;/think&gt;</c>, else DeepSeek-V3's (also for null).</summary>
    public static ChatTemplateKind DetectKind(string? jinjaSource)
    {
        if (jinjaSource is null)
            return ChatTemplateKind.DeepSeekV3;
        bool r1 = jinjaSource.Contains("<｜Assistant｜><think>\\n", StringComparison.Ordinal)
                  || jinjaSource.Contains("<｜Assistant｜><think>\n", StringComparison.Ordinal)
                  || jinjaSource.Contains("split('</think>')", StringComparison.Ordinal);
        return r1 ? ChatTemplateKind.DeepSeekR1 : ChatTemplateKind.DeepSeekV3;
    }

    /// <summary>Renders the messages; with <paramref name="addGenerationPrompt"/>, the text that makes the model
    /// answer as the assistant is appended (unless the last message is a tool result, as in the Jinja).</summary>
    /// <exception cref="ArgumentException">A message lacks the content its branch concatenates (the Jinja fails there too).</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
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

    private static string Required(ChatMessage m, int index) =>
        m.Content ?? throw new ArgumentException($"message {index} (role '{m.Role}') has no content");
}
