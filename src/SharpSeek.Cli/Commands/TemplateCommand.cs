// sharpseek template: chat messages -> the prompt the DeepSeek chat template renders, or its token ids.
using System.CommandLine;
using SharpSeek.Model.Gguf;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class TemplateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory with tokenizer_config.json (and tokenizer.json for --ids), or a .gguf file", Required = true };
        var messagesFile = new Option<string>("--messages-file") { Description = "JSON array of OpenAI-style messages", Required = true };
        var generation = new Option<bool>("--add-generation-prompt") { Description = "End with the assistant prompt" };
        var kind = new Option<string>("--template") { Description = "v3 or r1 (default: recognised from tokenizer_config.json)" };
        var ids = new Option<bool>("--ids") { Description = "Print the token ids of the prompt (JSON array) instead of its text" };
        var cmd = new Command("template", "Render chat messages with the DeepSeek chat template") { model, messagesFile, generation, kind, ids };
        cmd.SetAction(pr =>
        {
            string dir = pr.GetValue(model)!;
            bool gguf = GgufModel.IsGgufPath(dir);
            if (!gguf && !Directory.Exists(dir))
                throw new DirectoryNotFoundException($"model directory not found: {dir}");
            ChatTemplateKind? overrideKind = pr.GetValue(kind) switch
            {
                null => null,
                "v3" => ChatTemplateKind.DeepSeekV3,
                "r1" => ChatTemplateKind.DeepSeekR1,
                string other => throw new UserInputException($"--template: '{other}' is not v3 or r1"),
            };
            IReadOnlyList<ChatMessage> messages = ChatMessage.LoadJson(pr.GetValue(messagesFile)!);
            string configPath = Path.Combine(dir, "tokenizer_config.json");
            BpeTokenizer? ggufTokenizer = gguf ? GgufModel.LoadTokenizerFor(dir) : null;
            TokenizerConfig? config = ggufTokenizer?.Config ?? (File.Exists(configPath) ? TokenizerConfig.Load(configPath) : null);
            // a message the template cannot render (no content) is the messages file's mistake
            string prompt = CliErrors.UserValue(() => ChatTemplate.FromConfig(config, overrideKind).Render(messages, pr.GetValue(generation)));
            if (pr.GetValue(ids))
                CliOutput.WriteUtf8("[" + string.Join(",", (ggufTokenizer ?? GgufModel.LoadTokenizerFor(dir)).Encode(prompt)) + "]\n");
            else
                CliOutput.WriteUtf8(prompt);
            return 0;
        });
        return cmd;
    }
}
