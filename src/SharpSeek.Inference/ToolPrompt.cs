// The system message that offers tools to a DeepSeek model. DeepSeek-V3's chat template renders no tool list, so the
// tools (name, description, JSON Schema of the parameters) are described in text that shows the call markup the model
// was trained to emit (docs: the tool-call format of DeepSeek-V3's tokenizer_config.json). Shared by the in-process
// IChatClient and the HTTP server.
using System.Text;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference;

/// <summary>A tool offered to the model: its name, description and parameters' JSON Schema (JSON text, or null).</summary>
public sealed record ToolDescription(string Name, string? Description, string? ParametersJson);

/// <summary>Writes the system message that offers tools and the markup to call them.</summary>
public static class ToolPrompt
{
    /// <summary>The system message describing <paramref name="tools"/>, with the call markup of the template kind
    /// (V3.1's as its model card gives it; V3's otherwise).</summary>
    public static string Describe(IEnumerable<ToolDescription> tools, ChatTemplateKind kind = ChatTemplateKind.DeepSeekV3)
    {
        ArgumentNullException.ThrowIfNull(tools);
        var sb = new StringBuilder("## Tools\n\nYou have access to the following tools:\n");
        foreach (ToolDescription t in tools)
        {
            sb.Append("\n### ").Append(t.Name).Append('\n');
            if (!string.IsNullOrEmpty(t.Description))
                sb.Append("Description: ").Append(t.Description).Append('\n');
            if (t.ParametersJson is not null)
                sb.Append("Parameters: ").Append(t.ParametersJson).Append('\n');
        }
        if (kind == ChatTemplateKind.DeepSeekV31)
        {
            sb.Append("\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n")
              .Append(ToolCallParser.CallsBegin).Append(ToolCallParser.CallBegin).Append("tool_call_name").Append(ToolCallParser.Sep)
              .Append("tool_call_arguments").Append(ToolCallParser.CallEnd).Append("{{additional_tool_calls}}").Append(ToolCallParser.CallsEnd)
              .Append("\n\nWhere:\n- `tool_call_name` must be an exact match to one of the available tools\n")
              .Append("- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n")
              .Append("- For multiple tool calls, chain them directly without separators or spaces");
            return sb.ToString();
        }
        sb.Append("\nTo call tools, answer exactly in this format:\n")
          .Append(ToolCallParser.CallsBegin).Append(ToolCallParser.CallBegin).Append("function").Append(ToolCallParser.Sep)
          .Append("TOOL_NAME\n```json\nARGUMENTS\n```").Append(ToolCallParser.CallEnd).Append(ToolCallParser.CallsEnd);
        return sb.ToString();
    }
}
