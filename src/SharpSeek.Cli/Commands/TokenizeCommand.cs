// sharpseek tokenize: text -> token ids as a JSON array, with the tokenizer files of a DeepSeek model directory,
// a tokenizer.json or a .gguf file.
using System.CommandLine;
using System.Text;
using SharpSeek.Model.Gguf;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class TokenizeCommand
{
    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "tokenizer.json, a model directory holding it, or a .gguf file", Required = true };
        var textFile = new Option<string>("--text-file") { Description = "UTF-8 text file to encode (read exactly, no newline stripped)" };
        var text = new Option<string>("--text") { Description = "Text to encode (instead of --text-file)" };
        var special = new Option<bool>("--add-special-tokens") { Description = "Add BOS/EOS as tokenizer_config.json asks (directory only)" };
        var cmd = new Command("tokenize", "Encode text to token ids, printed as a JSON array on one line") { tokenizer, textFile, text, special };
        cmd.SetAction(pr =>
        {
            string input = ReadText(pr.GetValue(textFile), pr.GetValue(text));
            string path = pr.GetValue(tokenizer)!;
            BpeTokenizer t = GgufModel.IsGgufPath(path) ? GgufModel.LoadTokenizerFor(path) : BpeTokenizer.Load(path);
            int[] ids = t.Encode(input, pr.GetValue(special));
            CliOutput.WriteUtf8("[" + string.Join(",", ids) + "]\n");
            return 0;
        });
        return cmd;
    }

    private static string ReadText(string? file, string? text)
    {
        if (file is not null && text is not null)
            throw new UsageException("give --text-file or --text, not both");
        if (text is not null)
            return text;
        if (file is null)
            throw new UsageException("give --text-file or --text");
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
}
