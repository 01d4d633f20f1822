// sharpseek generate on a DeepSeek-V4 model (deepseek4 GGUF or the released safetensors): raw text, token ids, or a user
// message in V4's chat encoding; sampling and stop options as for the other models; one sequence, no speculation.
using System.CommandLine;
using SharpSeek.Inference;
using SharpSeek.Model.Gguf;
using SharpSeek.Model.V4;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class V4Generate
{

    public static int Run(ParseResult pr, string path, int[]? promptTokens, string? text, bool chat, string? system, GenerationOptions options,
                          bool wantText, bool stats, GenerationOptionSet shared, ChatFormatOptionSet format)
    {
        if (options.Speculative)
            throw new UserInputException("--speculative is not available for DeepSeek-V4 models yet");
        using V4Model m = V4Model.Open(path, pr.GetValue(shared.Threads), pr.GetValue(shared.IndexerPrecision));
        BpeTokenizer? tokenizer = m.Tokenizer;
        if (tokenizer is null && (text is not null || options.StopStrings.Count > 0))
            throw new UserInputException($"{path} has no tokenizer (no tokenizer.json, or a GGUF file without one): give --prompt-ids");
        V4Weights w = m.Weights;
        if (promptTokens is null && chat)
        {
            ChatTemplate template = ChatTemplate.Create(format.Kind(pr) ?? ChatTemplateKind.DeepSeekV4);
            var messages = new List<ChatMessage>();
            if (system is not null)
                messages.Add(ChatMessage.System(system));
            messages.Add(ChatMessage.User(text!));
            promptTokens = tokenizer!.Encode(template.Render(messages, format.Render(pr, template)));
        }
        promptTokens ??= tokenizer!.Encode(text!, addSpecialTokens: true);
        CliOptions.CheckIds(promptTokens, w.Config.VocabSize, text is null ? "--prompt-ids" : "--prompt");
        var g = new V4Generator(m.Transformer, tokenizer);
        using var cancel = new CancellationTokenSource();
        IEnumerable<GenerationUpdate> updates = CliErrors.UserValue(() => g.Stream(promptTokens, options, cancel.Token));
        bool interrupted = GenerateCommand.Print(updates, cancel, wantText ? tokenizer : null);
        if (stats || interrupted)
            Console.Error.WriteLine(GenerateCommand.Describe(g.LastStats) + (interrupted ? " (interrupted)" : ""));
        return interrupted ? ExitCodes.Interrupted : 0;
    }
}
