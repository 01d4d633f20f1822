// sharpseek generate: from token ids or text, raw or wrapped in the chat template, with the KV cache; text is
// streamed to stdout, or the generated ids printed on one line. Ctrl+C stops and reports (exit code 130).
using System.CommandLine;
using System.Globalization;
using SharpSeek.Inference;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var shared = new GenerationOptionSet(defaultMaxTokens: 256);
        var promptIds = new Option<string>("--prompt-ids") { Description = "Prompt as comma-separated token ids" };
        var prompt = new Option<string>("--prompt") { Description = "Prompt text (tokenized with the model's tokenizer.json)" };
        var chat = new Option<bool>("--chat") { Description = "Wrap --prompt as a user message in the model's chat template" };
        var system = new Option<string>("--system") { Description = "System prompt (with --chat)" };
        var outputIds = new Option<bool>("--output-ids") { Description = "Print the generated ids comma-separated on one line instead of text" };
        var stats = new Option<bool>("--stats") { Description = "Print timings, MTP acceptance and speculation costs to stderr" };
        var draftAlways = new Option<bool>("--draft-always")
        {
            Description = "With --speculative: draft on every step, not only where the measured step costs and acceptance predict a gain",
        };
        var format = new ChatFormatOptionSet();
        var cmd = new Command("generate", "Generate from a prompt with the KV cache (text streamed to stdout, or ids)")
        { promptIds, prompt, chat, system, outputIds, stats, draftAlways };
        foreach (Option o in shared.All.Concat(format.All))
            cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string dir = DefaultModel.Resolve(pr.GetValue(shared.Model));
            string? ids = pr.GetValue(promptIds), text = pr.GetValue(prompt);
            if ((ids is null) == (text is null))
                throw new UsageException("give exactly one of --prompt-ids and --prompt");
            if (pr.GetValue(chat) && text is null)
                throw new UsageException("--chat needs --prompt");
            if (pr.GetValue(system) is not null && !pr.GetValue(chat))
                throw new UsageException("--system needs --chat");
            if (format.Given(pr) && !pr.GetValue(chat))
                throw new UsageException("--template and --think need --chat");
            ChatTemplateKind? kind = format.Kind(pr);
            format.Thinking(pr); // a bad --think value fails before the model loads
            GenerationOptions options = shared.Options(pr, dir);
            bool wantText = !pr.GetValue(outputIds);
            int[]? promptTokens = ids is not null ? CliOptions.ParseIds(ids, "--prompt-ids") : null;
            if (V4Inspect.IsV4(dir))
            {
                if (pr.GetValue(draftAlways))
                    throw new UsageException("--draft-always needs --speculative, which DeepSeek-V4 models do not run yet");
                return V4Generate.Run(pr, dir, promptTokens, text, pr.GetValue(chat), pr.GetValue(system), options, wantText, pr.GetValue(stats), shared, format);
            }
            // text in, or stop strings: a tokenizer is required; text out: used when the model has one
            TokenizerLoad tokenizerLoad = text is not null || options.StopStrings.Count > 0 ? TokenizerLoad.Required
                                        : wantText ? TokenizerLoad.Optional : TokenizerLoad.None;
            using ModelSession session = CliOptions.OpenSession(dir, shared.SessionOptions(pr, tokenizerLoad, kind));
            BpeTokenizer? tokenizer = session.Tokenizer;
            if (promptTokens is null && pr.GetValue(chat))
            {
                var messages = new List<ChatMessage>();
                if (pr.GetValue(system) is string s)
                    messages.Add(ChatMessage.System(s));
                messages.Add(ChatMessage.User(text!));
                ChatRenderOptions render = format.Render(pr, session.Template!);
                promptTokens = tokenizer!.Encode(session.Template!.Render(messages, render));
            }
            else
                promptTokens ??= tokenizer!.Encode(text!, addSpecialTokens: true);
            string promptOption = ids is not null ? "--prompt-ids" : "--prompt";
            CliOptions.CheckIds(promptTokens, session.Config.VocabSize, promptOption);

            if (pr.GetValue(draftAlways) && !options.Speculative)
                throw new UsageException("--draft-always needs --speculative");
            Generator g = session.CreateGenerator();
            if (pr.GetValue(draftAlways))
                g.Speculation = new SpeculationPolicy(adaptive: false);
            using var cancel = new CancellationTokenSource();
            // the generator checks the prompt (empty, longer than the context) before it starts
            IEnumerable<GenerationUpdate> updates = CliErrors.UserValue(() => g.Stream(promptTokens, options, cancel.Token));
            bool interrupted = Print(updates, cancel, wantText ? tokenizer : null);
            GenerationStats st = g.LastStats;
            if (pr.GetValue(stats) || interrupted)
                Console.Error.WriteLine(Describe(st) + (interrupted ? " (interrupted)" : ""));
            return interrupted ? ExitCodes.Interrupted : 0;
        });
        return cmd;
    }

    /// <summary>
    /// Streams the updates to stdout (text when a tokenizer is given, else the ids on one line at the end); Ctrl+C cancels
    /// through <paramref name="cancel"/>. Returns whether it was interrupted.
    /// </summary>
    internal static bool Print(IEnumerable<GenerationUpdate> updates, CancellationTokenSource cancel, BpeTokenizer? textOf)
    {
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        var output = new List<int>();
        bool interrupted = false;
        try
        {
            foreach (GenerationUpdate u in updates)
            {
                output.Add(u.Token);
                if (textOf is not null)
                {
                    Console.Out.Write(u.Text);
                    Console.Out.Flush();
                }
            }
        }
        catch (OperationCanceledException)
        {
            interrupted = true;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        Console.WriteLine(textOf is null ? string.Join(",", output) : "");
        return interrupted;
    }

    internal static string Describe(GenerationStats s)
    {
        var inv = CultureInfo.InvariantCulture;
        string text = string.Create(inv, $"prompt {s.PromptTokens} tokens ({s.CachedPromptTokens} cached) in {s.PrefillSeconds:0.000} s, " +
                                         $"{s.CompletionTokens} generated in {s.DecodeSeconds:0.000} s ({(s.CompletionTokens - 1) / Math.Max(s.DecodeSeconds, 1e-9):0.0} tok/s)");
        if (s.DraftTokens > 0)
            text += string.Create(inv, $", MTP drafts accepted {s.AcceptedDraftTokens}/{s.DraftTokens} ({100 * s.AcceptanceRate:0.0}%)");
        if (!double.IsNaN(s.PlainStepSeconds) || !double.IsNaN(s.SpeculativeStepSeconds))
        {
            // measured: tokens per second of the speculative steps against the plain steps' rate
            double perStep = s.SpeculativeSteps == 0 ? 1 : 1 + (double)s.AcceptedDraftTokens / s.SpeculativeSteps;
            double specRate = perStep / s.SpeculativeStepSeconds, plainRate = 1 / s.PlainStepSeconds;
            text += string.Create(inv, $"; speculation: {s.SpeculativeSteps} draft steps ({perStep:0.00} tokens each), {s.PlainSteps} plain, step cost {1e3 * s.SpeculativeStepSeconds:0.00} ms vs {1e3 * s.PlainStepSeconds:0.00} ms plain (ratio {s.CostRatio:0.00}), predicted speed-up {s.PredictedSpeedup:0.00}x, measured {specRate / plainRate:0.00}x per draft step");
            if (s.SpeculationStopped)
                text += " (drafts cannot pay on this model: stopped drafting)";
        }
        else if (s.SpeculationStopped)
        {
            text += string.Create(inv, $"; speculation: none (this model's shape predicts a draft-and-verify step at {s.PriorCostRatio:0.00} plain steps, more than any acceptance repays)");
        }
        return text;
    }
}
