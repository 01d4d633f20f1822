// sharpseek template: chat messages -> the prompt the DeepSeek chat template renders, or its token ids. The messages
// file is an array of OpenAI-style messages or a chat request object ({"messages": [...], "tools": [...]}); the
// template is --template's, else recognised from tokenizer_config.json (V3, R1, V3.1) or config.json's model_type
// (V3.2, V4); --think sets the thinking mode of the hybrid templates.
using System.CommandLine;
using System.Text.Json;
using SharpSeek.Model.Gguf;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class TemplateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory with tokenizer_config.json (and tokenizer.json for --ids), or a .gguf file", Required = true };
        var messagesFile = new Option<string>("--messages-file") { Description = "JSON array of OpenAI-style messages, or a request object with \"messages\" and \"tools\"", Required = true };
        var generation = new Option<bool>("--add-generation-prompt") { Description = "End with the assistant prompt (v3.2 and v4 always open the assistant turn after a user or tool message)" };
        var ids = new Option<bool>("--ids") { Description = "Print the token ids of the prompt (JSON array) instead of its text" };
        var format = new ChatFormatOptionSet();
        var cmd = new Command("template", "Render chat messages with the DeepSeek chat template") { model, messagesFile, generation, ids };
        foreach (Option o in format.All)
            cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string dir = pr.GetValue(model)!;
            bool gguf = GgufModel.IsGgufPath(dir);
            if (!gguf && !Directory.Exists(dir))
                throw new DirectoryNotFoundException($"model directory not found: {dir}");
            ChatTemplateKind? overrideKind = format.Kind(pr);
            format.Thinking(pr); // a bad --think value fails before any file is read
            ChatConversation conversation = ChatMessage.LoadConversationJson(pr.GetValue(messagesFile)!);
            string configPath = Path.Combine(dir, "tokenizer_config.json");
            BpeTokenizer? ggufTokenizer = gguf ? GgufModel.LoadTokenizerFor(dir) : null;
            TokenizerConfig? config = ggufTokenizer?.Config ?? (File.Exists(configPath) ? TokenizerConfig.Load(configPath) : null);
            ChatTemplate template = ChatTemplate.FromConfig(config, overrideKind, gguf ? null : ModelType(dir));
            ChatRenderOptions render = format.Render(pr, template, pr.GetValue(generation)) with { Tools = conversation.Tools };
            // a message the template cannot render (no content, arguments that are not JSON) is the messages file's mistake
            string prompt = CliErrors.UserValue(() => template.Render(conversation.Messages, render));
            if (pr.GetValue(ids))
                CliOutput.WriteUtf8("[" + string.Join(",", (ggufTokenizer ?? GgufModel.LoadTokenizerFor(dir)).Encode(prompt)) + "]\n");
            else
                CliOutput.WriteUtf8(prompt);
            return 0;
        });
        return cmd;
    }

    // config.json's model_type, when the directory has one (V3.2 and V4 ship no Jinja template)
    private static string? ModelType(string dir)
    {
        string path = Path.Combine(dir, "config.json");
        if (!File.Exists(path))
            return null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("model_type", out JsonElement t)
                   && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
    }
}
