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
    /// <summary>--indexer-precision for V4: fp8 (the default, as for V3.2) runs the reference's FP8/FP4 round trips, f32 computes as llama.cpp.</summary>
    public static V4Precision Precision(SharpSeek.Model.IndexerPrecision? p) =>
        p == SharpSeek.Model.IndexerPrecision.F32 ? V4Precision.F32 : V4Precision.Reference;

    public static int Run(ParseResult pr, string path, int[]? promptTokens, string? text, bool chat, string? system, GenerationOptions options,
                          bool wantText, bool stats, GenerationOptionSet shared, ChatFormatOptionSet format)
    {
        if (options.Speculative)
            throw new UserInputException("--speculative is not available for DeepSeek-V4 models yet");
        BpeTokenizer? tokenizer = GgufModel.TryLoadTokenizerFor(path);
        if (tokenizer is null && (text is not null || options.StopStrings.Count > 0))
            throw new UserInputException($"{path} has no tokenizer (no tokenizer.json, or a GGUF file without one): give --prompt-ids");
        using V4Weights w = GgufModel.IsGgufPath(path) ? V4Gguf.Load(path) : V4Checkpoint.Load(path);
        int threads = CliOptions.PositiveThreads(pr.GetValue(shared.Threads));
        using var be = new SharpSeek.Tensors.ThreadedBackend(threads);
        var model = new V4Transformer(w, be, Precision(CliOptions.ParseIndexerPrecision(pr.GetValue(shared.IndexerPrecision))));
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
        var g = new V4Generator(model, tokenizer);
        using var cancel = new CancellationTokenSource();
        IEnumerable<GenerationUpdate> updates = CliErrors.UserValue(() => g.Stream(promptTokens, options, cancel.Token));
        bool interrupted = GenerateCommand.Print(updates, cancel, wantText ? tokenizer : null);
        if (stats || interrupted)
            Console.Error.WriteLine(GenerateCommand.Describe(g.LastStats) + (interrupted ? " (interrupted)" : ""));
        return interrupted ? ExitCodes.Interrupted : 0;
    }
}
