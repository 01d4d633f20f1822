// DeepSeek-V3.1 / V3.1-Terminus: the Jinja chat_template of the V3.1 release's tokenizer_config.json written out in
// C#, branch for branch (transformers renders it with trim_blocks and lstrip_blocks; it has no text outside tags).
//   system messages    joined by "\n\n" after {{bos_token}}
//   user               <｜User｜>CONTENT
//   assistant, tool_calls given (even an empty list)
//                      after a user turn <｜Assistant｜></think>; then [CONTENT]<｜tool▁calls▁begin｜> before the first
//                      call, each call <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGUMENTS<｜tool▁call▁end｜> with no separator,
//                      and <｜tool▁calls▁end｜><｜end▁of▁sentence｜>
//   assistant, no tool_calls
//                      after a user turn <｜Assistant｜></think> (<｜Assistant｜><think> for a "prefix" message in thinking
//                      mode); after tool output CONTENT<｜end▁of▁sentence｜>, else the text after the first </think>
//                      (earlier reasoning dropped) and <｜end▁of▁sentence｜>
//   tool               <｜tool▁output▁begin｜>CONTENT<｜tool▁output▁end｜> (no outputs-begin/end block, unlike V3)
//   generation prompt  only after a user turn: <｜Assistant｜><think> (thinking) or <｜Assistant｜></think>
using System.Text;

namespace SharpSeek.Tokenizer;

public sealed partial class ChatTemplate
{
    private const string ThinkStart = "<think>";
    private const string ThinkEnd = "</think>";

    private string RenderV31(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, bool thinking)
    {
        var sb = new StringBuilder();
        sb.Append(BosToken);
        bool firstSystem = true;
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != "system")
                continue;
            if (!firstSystem)
                sb.Append("\n\n");
            sb.Append(Required(messages[i], i));
            firstSystem = false;
        }

        bool isTool = false, isLastUser = false;
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage m = messages[i];
            switch (m.Role)
            {
                case "user":
                    isTool = false;
                    isLastUser = true;
                    sb.Append(User).Append(Required(m, i));
                    break;
                case "assistant" when m.ToolCalls is not null:
                    if (isLastUser)
                        sb.Append(Assistant).Append(ThinkEnd);
                    isLastUser = false;
                    isTool = false;
                    bool first = true;
                    foreach (ToolCall call in m.ToolCalls)
                    {
                        if (first)
                        {
                            sb.Append(m.Content).Append(CallsBegin);
                            first = false;
                        }
                        sb.Append(CallBegin).Append(call.Name).Append(Sep).Append(call.Arguments).Append(CallEnd);
                    }
                    sb.Append(CallsEnd).Append(EndOfSentence);
                    break;
                case "assistant":
                    if (isLastUser)
                        sb.Append(Assistant).Append(m.Prefix && thinking ? ThinkStart : ThinkEnd);
                    isLastUser = false;
                    string content = Required(m, i);
                    if (isTool)
                    {
                        sb.Append(content).Append(EndOfSentence);
                        isTool = false;
                    }
                    else
                    {
                        // content.split('</think>', 1)[1]: the text after the first </think>
                        int end = content.IndexOf(ThinkEnd, StringComparison.Ordinal);
                        sb.Append(end < 0 ? content : content[(end + ThinkEnd.Length)..]).Append(EndOfSentence);
                    }
                    break;
                case "tool":
                    isLastUser = false;
                    isTool = true;
                    sb.Append(OutputBegin).Append(Required(m, i)).Append(OutputEnd);
                    break;
            }
        }
        if (addGenerationPrompt && isLastUser && !isTool)
            sb.Append(Assistant).Append(thinking ? ThinkStart : ThinkEnd);
        return sb.ToString();
    }
}
