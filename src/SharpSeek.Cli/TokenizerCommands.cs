// Tokenizer verbs: tokenize (text -> ids as a JSON array) and template (chat messages -> the rendered prompt,
// or its ids), both with the tokenizer files of a DeepSeek model directory.
using System.CommandLine;
using System.Text;
using SharpSeek.Model.Gguf;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class TokenizerCommands
{
    public static IEnumerable<Command> Create() => [Tokenize(), Template()];

    private static Command Tokenize()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "tokenizer.json, a model directory holding it, or a .gguf file", Required = true };
        var textFile = new Option<string>("--text-file") { Description = "UTF-8 text file to encode (read exactly, no newline stripped)" };
        var text = new Option<string>("--text") { Description = "Text to encode (instead of --text-file)" };
        var special = new Option<bool>("--add-special-tokens") { Description = "Add BOS/EOS as tokenizer_config.json asks (directory only)" };
        var cmd = new Command("tokenize", "Encode text to token ids, printed as a JSON array on one line") { tokenizer, textFile, text, special };
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            string input = ReadText(pr.GetValue(textFile), pr.GetValue(text));
            string path = pr.GetValue(tokenizer)!;
            BpeTokenizer t = GgufModel.IsGgufPath(path) ? GgufModel.LoadTokenizerFor(path) : BpeTokenizer.Load(path);
            int[] ids = t.Encode(input, pr.GetValue(special));
            WriteUtf8("[" + string.Join(",", ids) + "]\n");
            return 0;
        }));
        return cmd;
    }

    private static Command Template()
    {
        var model = new Option<string>("--model") { Description = "Model directory with tokenizer_config.json (and tokenizer.json for --ids), or a .gguf file", Required = true };
        var messagesFile = new Option<string>("--messages-file") { Description = "JSON array of OpenAI-style messages", Required = true };
        var generation = new Option<bool>("--add-generation-prompt") { Description = "End with the assistant prompt" };
        var kind = new Option<string>("--template") { Description = "v3 or r1 (default: recognised from tokenizer_config.json)" };
        var ids = new Option<bool>("--ids") { Description = "Print the token ids of the prompt (JSON array) instead of its text" };
        var cmd = new Command("template", "Render chat messages with the DeepSeek chat template") { model, messagesFile, generation, kind, ids };
        cmd.SetAction(pr => CliErrors.Run(() =>
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
                string other => throw new ArgumentException($"--template: '{other}' is not v3 or r1"),
            };
            IReadOnlyList<ChatMessage> messages = ChatMessage.LoadJson(pr.GetValue(messagesFile)!);
            string configPath = Path.Combine(dir, "tokenizer_config.json");
            BpeTokenizer? ggufTokenizer = gguf ? GgufModel.LoadTokenizerFor(dir) : null;
            TokenizerConfig? config = ggufTokenizer?.Config ?? (File.Exists(configPath) ? TokenizerConfig.Load(configPath) : null);
            string prompt = ChatTemplate.FromConfig(config, overrideKind).Render(messages, pr.GetValue(generation));
            if (pr.GetValue(ids))
                WriteUtf8("[" + string.Join(",", (ggufTokenizer ?? GgufModel.LoadTokenizerFor(dir)).Encode(prompt)) + "]\n");
            else
                WriteUtf8(prompt);
            return 0;
        }));
        return cmd;
    }

    private static string ReadText(string? file, string? text)
    {
        if (file is not null && text is not null)
            throw new ArgumentException("give --text-file or --text, not both");
        if (text is not null)
            return text;
        if (file is null)
            throw new ArgumentException("give --text-file or --text");
        if (!File.Exists(file))
            throw new FileNotFoundException($"text file not found: {file}", file);
        try
        {
            // GetString keeps a leading U+FEFF: the text is encoded exactly as stored
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(file));
        }
        catch (DecoderFallbackException)
        {
            throw new InvalidDataException($"{file}: not valid UTF-8");
        }
    }

    // stdout as UTF-8 bytes whatever the console encoding, with nothing added
    private static void WriteUtf8(string s)
    {
        using Stream stdout = Console.OpenStandardOutput();
        stdout.Write(Encoding.UTF8.GetBytes(s));
    }
}
