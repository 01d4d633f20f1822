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
    /// <summary>The system message describing <paramref name="tools"/>.</summary>
    public static string Describe(IEnumerable<ToolDescription> tools)
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
        sb.Append("\nTo call tools, answer exactly in this format:\n")
          .Append(ToolCallParser.CallsBegin).Append(ToolCallParser.CallBegin).Append("function").Append(ToolCallParser.Sep)
          .Append("TOOL_NAME\n```json\nARGUMENTS\n```").Append(ToolCallParser.CallEnd).Append(ToolCallParser.CallsEnd);
        return sb.ToString();
    }
}
