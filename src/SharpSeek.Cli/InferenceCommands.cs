// Inference verbs: generate (ids or text, raw or wrapped in the chat template, streamed) and chat (interactive,
// line by line from stdin, R1 reasoning dimmed on a terminal), plus the training-cost view of `inspect --cost`.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using SharpSeek.Inference;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tensors;
using SharpSeek.Tokenizer;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using TemplateMessage = SharpSeek.Tokenizer.ChatMessage;

namespace SharpSeek.Cli;

internal static class InferenceCommands
{
    public static IEnumerable<Command> Create() => [Generate(), Chat()];

    // the options generate and chat share: model, runtime and sampling
    private sealed class Shared
    {
        public readonly Option<string> Model = DefaultModel.Option();
        public readonly Option<int> MaxTokens;
        public readonly Option<float?> Temperature = new("--temperature") { Description = "Softmax temperature; 0 = greedy (default 0.6)" };
        public readonly Option<int> TopK = new("--top-k") { Description = "Keep the k most likely tokens (0 = off)" };
        public readonly Option<float?> TopP = new("--top-p") { Description = "Nucleus: smallest set with this much probability (default 0.95; 1 = off)" };
        public readonly Option<float> MinP = new("--min-p") { Description = "Drop tokens below this fraction of the top probability (0 = off)" };
        public readonly Option<float> RepeatPenalty = new("--repeat-penalty") { Description = "Divide positive / multiply negative logits of seen tokens (1 = off)", DefaultValueFactory = _ => 1f };
        public readonly Option<float> PresencePenalty = new("--presence-penalty") { Description = "Subtract once from generated tokens' logits" };
        public readonly Option<float> FrequencyPenalty = new("--frequency-penalty") { Description = "Subtract per occurrence from generated tokens' logits" };
        public readonly Option<long?> Seed = new("--seed") { Description = "Random seed (same seed, same output)" };
        public readonly Option<string[]> Stop = new("--stop") { Description = "Stop string (repeatable); not printed", AllowMultipleArgumentsPerToken = false };
        public readonly Option<bool> IgnoreEos = new("--ignore-eos") { Description = "Do not stop at the EOS token" };
        public readonly Option<string> CacheType = PerfCommands.CacheTypeOption("f32");
        public readonly Option<bool> Speculative = new("--speculative") { Description = "MTP speculative decoding (models with an MTP module)" };
        public readonly Option<int> Threads = new("--threads") { Description = "CPU threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        public readonly Option<string> Dtype = PerfCommands.DtypeOption();

        public Shared(int defaultMaxTokens)
        {
            MaxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => defaultMaxTokens };
        }

        public IEnumerable<Option> All => [Model, MaxTokens, Temperature, TopK, TopP, MinP, RepeatPenalty, PresencePenalty, FrequencyPenalty,
                                           Seed, Stop, IgnoreEos, CacheType, Speculative, Threads, Dtype];

        public GenerationOptions Options(ParseResult pr)
        {
            var o = new GenerationOptions
            {
                MaxTokens = pr.GetValue(MaxTokens),
                Sampling = new SamplingOptions
                {
                    Temperature = pr.GetValue(Temperature) ?? 0.6f,
                    TopK = pr.GetValue(TopK),
                    TopP = pr.GetValue(TopP) ?? 0.95f,
                    MinP = pr.GetValue(MinP),
                    RepetitionPenalty = pr.GetValue(RepeatPenalty),
                    PresencePenalty = pr.GetValue(PresencePenalty),
                    FrequencyPenalty = pr.GetValue(FrequencyPenalty),
                    Seed = pr.GetValue(Seed),
                },
                StopStrings = pr.GetValue(Stop) ?? [],
                IgnoreEos = pr.GetValue(IgnoreEos),
                Speculative = pr.GetValue(Speculative),
            };
            o.Validate();
            return o;
        }

        public CacheType Cache(ParseResult pr) => PerfCommands.ParseCacheType(pr.GetValue(CacheType));

        public ThreadedBackend Backend(ParseResult pr)
        {
            int t = pr.GetValue(Threads);
            if (t < 1)
                throw new ArgumentException("--threads must be >= 1");
            return new ThreadedBackend(t);
        }
    }

    private static Command Generate()
    {
        var shared = new Shared(defaultMaxTokens: 256);
        var promptIds = new Option<string>("--prompt-ids") { Description = "Prompt as comma-separated token ids" };
        var prompt = new Option<string>("--prompt") { Description = "Prompt text (tokenized with the model's tokenizer.json)" };
        var chat = new Option<bool>("--chat") { Description = "Wrap --prompt as a user message in the model's chat template" };
        var system = new Option<string>("--system") { Description = "System prompt (with --chat)" };
        var outputIds = new Option<bool>("--output-ids") { Description = "Print the generated ids comma-separated on one line instead of text" };
        var stats = new Option<bool>("--stats") { Description = "Print timings and MTP acceptance to stderr" };
        var cmd = new Command("generate", "Generate from a prompt with the KV cache (text streamed to stdout, or ids)")
        { promptIds, prompt, chat, system, outputIds, stats };
        foreach (Option o in shared.All)
            cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            string dir = DefaultModel.Resolve(pr.GetValue(shared.Model));
            string? ids = pr.GetValue(promptIds), text = pr.GetValue(prompt);
            if ((ids is null) == (text is null))
                throw new ArgumentException("give exactly one of --prompt-ids and --prompt");
            if (pr.GetValue(chat) && text is null)
                throw new ArgumentException("--chat needs --prompt");
            if (pr.GetValue(system) is not null && !pr.GetValue(chat))
                throw new ArgumentException("--system needs --chat");
            GenerationOptions options = shared.Options(pr);
            bool wantText = !pr.GetValue(outputIds);
            // text in, or stop strings: a tokenizer is required; text out: used when the model has one
            BpeTokenizer? tokenizer = text is not null || options.StopStrings.Count > 0 ? GgufModel.LoadTokenizerFor(dir)
                                    : wantText ? GgufModel.TryLoadTokenizerFor(dir) : null;
            int[] promptTokens;
            if (ids is not null)
                promptTokens = CliErrors.ParseIds(ids, "--prompt-ids");
            else if (pr.GetValue(chat))
            {
                var messages = new List<TemplateMessage>();
                if (pr.GetValue(system) is string s)
                    messages.Add(TemplateMessage.System(s));
                messages.Add(TemplateMessage.User(text!));
                promptTokens = tokenizer!.Encode(ChatTemplate.FromConfig(tokenizer.Config).Render(messages, addGenerationPrompt: true));
            }
            else
                promptTokens = tokenizer!.Encode(text!, addSpecialTokens: true);

            using ModelWeights w = ModelLoading.Load(dir, PerfCommands.LoadOptionsFor(pr.GetValue(shared.Dtype)));
            CheckVocabulary(tokenizer, w.Config, dir);
            using ThreadedBackend backend = shared.Backend(pr);
            var g = new Generator(new Transformer(w, backend), tokenizer, shared.Cache(pr));
            using var cancel = new CancellationTokenSource();
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
                foreach (GenerationUpdate u in g.Stream(promptTokens, options, cancel.Token))
                {
                    output.Add(u.Token);
                    if (wantText && tokenizer is not null)
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
            if (!wantText || tokenizer is null)
                Console.WriteLine(string.Join(",", output));
            else
                Console.WriteLine();
            GenerationStats st = g.LastStats;
            if (pr.GetValue(stats) || interrupted)
                Console.Error.WriteLine(Describe(st) + (interrupted ? " (interrupted)" : ""));
            return interrupted ? 130 : 0;
        }));
        return cmd;
    }

    private static Command Chat()
    {
        var shared = new Shared(defaultMaxTokens: 1024);
        var system = new Option<string>("--system") { Description = "System prompt" };
        var color = new Option<string>("--color") { Description = "auto (ANSI when stdout is a terminal and NO_COLOR is unset), always or never", DefaultValueFactory = _ => "auto" };
        var cmd = new Command("chat", "Interactive chat: reads stdin line by line; /reset, /system TEXT, /exit") { system, color };
        foreach (Option o in shared.All)
            cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            string dir = DefaultModel.Resolve(pr.GetValue(shared.Model));
            GenerationOptions options = shared.Options(pr);
            bool ansi = pr.GetValue(color) switch
            {
                "always" => true,
                "never" => false,
                "auto" => !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR")),
                var v => throw new ArgumentException($"--color must be auto, always or never, got '{v}'"),
            };
            BpeTokenizer tokenizer = GgufModel.LoadTokenizerFor(dir);
            using ModelWeights w = ModelLoading.Load(dir, PerfCommands.LoadOptionsFor(pr.GetValue(shared.Dtype)));
            CheckVocabulary(tokenizer, w.Config, dir);
            using ThreadedBackend backend = shared.Backend(pr);
            var generator = new Generator(new Transformer(w, backend), tokenizer, shared.Cache(pr));
            using var client = new SharpSeekChatClient(generator, defaults: options, modelId: Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))));
            return RunChat(client, pr.GetValue(system), ansi);
        }));
        return cmd;
    }

    private static int RunChat(SharpSeekChatClient client, string? system, bool ansi)
    {
        bool interactive = !Console.IsInputRedirected;
        string dim = ansi ? "\u001b[2m" : "", reset = ansi ? "\u001b[0m" : "";
        var history = new List<AiChatMessage>();
        Console.Error.WriteLine($"chat with {client.Metadata.DefaultModelId} ({client.Generator.Model.Config.ModelType}, {client.Template.Kind} template, " +
                                $"context {client.Generator.ContextLength}); commands: /reset, /system TEXT, /exit");
        CancellationTokenSource? reply = null;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (reply is { } r) // Ctrl+C stops the reply; at the prompt it ends the program
            {
                e.Cancel = true;
                r.Cancel();
            }
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            while (true)
            {
                if (interactive)
                    Console.Write("> ");
                string? line = Console.ReadLine();
                if (line is null)
                    return 0;
                line = line.Trim();
                if (line.Length == 0)
                    continue;
                if (line.StartsWith('/'))
                {
                    string command = line.Split(' ', 2)[0];
                    string arg = line.Length > command.Length ? line[(command.Length + 1)..].Trim() : "";
                    switch (command)
                    {
                        case "/exit" or "/quit":
                            return 0;
                        case "/reset":
                            history.Clear();
                            client.Generator.Reset();
                            Console.WriteLine("(conversation cleared)");
                            continue;
                        case "/system":
                            system = arg.Length > 0 ? arg : null;
                            history.Clear();
                            Console.WriteLine(system is null ? "(system prompt removed, conversation cleared)" : "(system prompt set, conversation cleared)");
                            continue;
                        case "/help":
                            Console.WriteLine("/reset clears the conversation; /system TEXT sets the system prompt (and clears); /exit quits");
                            continue;
                        default:
                            Console.WriteLine($"unknown command {command}; try /help");
                            continue;
                    }
                }
                history.Add(new AiChatMessage(ChatRole.User, line));
                reply = new CancellationTokenSource();
                var answer = new System.Text.StringBuilder();
                UsageDetails? usage = null;
                bool inReasoning = false;
                var clock = Stopwatch.StartNew();
                try
                {
                    var chatOptions = new ChatOptions { Instructions = system };
                    foreach (ChatResponseUpdate u in Sync(client.GetStreamingResponseAsync(history, chatOptions, reply.Token)))
                    {
                        foreach (AIContent c in u.Contents)
                        {
                            switch (c)
                            {
                                case TextReasoningContent r:
                                    if (!inReasoning)
                                        Console.Write(dim + (ansi ? "" : "<think>"));
                                    inReasoning = true;
                                    Console.Write(r.Text);
                                    break;
                                case TextContent t:
                                    if (inReasoning)
                                        Console.Write((ansi ? "" : "</think>") + reset);
                                    inReasoning = false;
                                    Console.Write(t.Text);
                                    answer.Append(t.Text);
                                    break;
                                case FunctionCallContent f:
                                    Console.Write($"[tool call {f.Name}({JsonSerializer.Serialize(f.Arguments)})]");
                                    break;
                                case UsageContent uc:
                                    usage = uc.Details;
                                    break;
                            }
                        }
                        Console.Out.Flush();
                    }
                    if (inReasoning)
                        Console.Write((ansi ? "" : "</think>") + reset);
                    Console.WriteLine();
                    history.Add(new AiChatMessage(ChatRole.Assistant, answer.ToString()));
                    if (usage is not null && interactive)
                    {
                        double s = clock.Elapsed.TotalSeconds;
                        Console.Error.WriteLine($"{dim}[{usage.OutputTokenCount} tokens, {usage.OutputTokenCount / Math.Max(s, 1e-9):0.0} tok/s, " +
                                                $"prompt {usage.InputTokenCount} ({usage.CachedInputTokenCount} cached)]{reset}");
                    }
                }
                catch (OperationCanceledException)
                {
                    Console.WriteLine(reset);
                    Console.Error.WriteLine("(reply stopped)");
                    history.Add(new AiChatMessage(ChatRole.Assistant, answer.ToString()));
                }
                catch (ArgumentException e)
                {
                    Console.WriteLine(reset);
                    Console.Error.WriteLine("error: " + e.Message);
                    history.RemoveAt(history.Count - 1);
                }
                finally
                {
                    reply.Dispose();
                    reply = null;
                }
            }
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    // the CLI is synchronous: run the async stream to completion on this thread
    private static IEnumerable<T> Sync<T>(IAsyncEnumerable<T> source)
    {
        IAsyncEnumerator<T> e = source.GetAsyncEnumerator();
        try
        {
            while (e.MoveNextAsync().AsTask().GetAwaiter().GetResult())
                yield return e.Current;
        }
        finally
        {
            e.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static void CheckVocabulary(BpeTokenizer? tokenizer, ModelConfig c, string dir)
    {
        if (tokenizer is not null && tokenizer.VocabSize > c.VocabSize)
            throw new InvalidDataException($"{dir}: tokenizer.json has {tokenizer.VocabSize} tokens but the model only {c.VocabSize}");
    }

    private static string Describe(GenerationStats s)
    {
        var inv = CultureInfo.InvariantCulture;
        string text = string.Create(inv, $"prompt {s.PromptTokens} tokens ({s.CachedPromptTokens} cached) in {s.PrefillSeconds:0.000} s, " +
                                         $"{s.CompletionTokens} generated in {s.DecodeSeconds:0.000} s ({(s.CompletionTokens - 1) / Math.Max(s.DecodeSeconds, 1e-9):0.0} tok/s)");
        if (s.DraftTokens > 0)
            text += string.Create(inv, $", MTP drafts accepted {s.AcceptedDraftTokens}/{s.DraftTokens} ({100 * s.AcceptanceRate:0.0}%)");
        return text;
    }
}

/// <summary>`inspect --cost`: training compute, GPU-hours and dollars next to a reported figure.</summary>
internal static class CostView
{
    public sealed class Options
    {
        public readonly Option<bool> Cost = new("--cost") { Description = "Training cost estimate (needs --tokens)" };
        public readonly Option<string> Tokens = new("--tokens") { Description = "Training tokens, e.g. 14.8T" };
        public readonly Option<double> Price = new("--gpu-hour-price") { Description = "Dollars per GPU-hour", DefaultValueFactory = _ => 2 };
        public readonly Option<string> Gpu = new("--gpu") { Description = "h800, h100, h200 or a100", DefaultValueFactory = _ => "h800" };
        public readonly Option<double> Utilization = new("--utilization") { Description = "Model FLOPs utilization (MFU) of the peak", DefaultValueFactory = _ => 0.4 };
        public readonly Option<string> Precision = new("--precision") { Description = "Peak the utilization refers to: bf16 or fp8", DefaultValueFactory = _ => "bf16" };
        public readonly Option<int> SequenceLength = new("--seq-len") { Description = "Training sequence length (attention sees half on average)", DefaultValueFactory = _ => 4096 };
        public readonly Option<string> Reported = new("--reported-gpu-hours") { Description = "Reported GPU-hours to compare with, e.g. 2.788M (default: DeepSeek-V3's for its config on H800)" };
        public readonly Option<int?> GpuCount = new("--gpu-count") { Description = "Cluster size for wall-clock and capital figures" };

        public IEnumerable<Option> All => [Cost, Tokens, Price, Gpu, Utilization, Precision, SequenceLength, Reported, GpuCount];
    }

    public static int Print(ModelConfig c, Options o, ParseResult pr, bool json)
    {
        string tokens = pr.GetValue(o.Tokens) ?? throw new ArgumentException("--cost needs --tokens (e.g. --tokens 14.8T)");
        var options = new TrainingCostOptions
        {
            Tokens = TrainingCost.ParseQuantity(tokens, "--tokens"),
            Gpu = pr.GetValue(o.Gpu)!,
            GpuHourPrice = pr.GetValue(o.Price),
            Utilization = pr.GetValue(o.Utilization),
            Precision = pr.GetValue(o.Precision) switch
            {
                "bf16" => PeakPrecision.Bf16,
                "fp8" => PeakPrecision.Fp8,
                var v => throw new ArgumentException($"--precision must be bf16 or fp8, got '{v}'"),
            },
            SequenceLength = pr.GetValue(o.SequenceLength),
            ReportedGpuHours = pr.GetValue(o.Reported) is string r ? TrainingCost.ParseQuantity(r, "--reported-gpu-hours") : null,
            GpuCount = pr.GetValue(o.GpuCount),
        };
        TrainingCost e = TrainingCost.Estimate(c, options);
        if (json)
        {
            var d = new Dictionary<string, object?>
            {
                ["tokens"] = options.Tokens,
                ["activated_matmul_parameters"] = e.ActivatedMatmulParameters,
                ["mtp_matmul_parameters"] = e.MtpMatmulParameters,
                ["matmul_flops_per_token"] = e.MatmulFlopsPerToken,
                ["attention_flops_per_token"] = e.AttentionFlopsPerToken,
                ["sequence_length"] = options.SequenceLength,
                ["average_context"] = e.AverageContext,
                ["total_flops"] = e.TotalFlops,
                ["gpu"] = e.Gpu.Name,
                ["precision"] = options.Precision.ToString().ToLowerInvariant(),
                ["peak_flops"] = e.PeakFlops,
                ["utilization"] = options.Utilization,
                ["gpu_hours"] = e.GpuHours,
                ["gpu_hour_price"] = options.GpuHourPrice,
                ["dollars"] = e.Dollars,
                ["reported_source"] = e.Reported?.Source,
                ["reported_gpu_hours"] = e.ReportedGpuHours,
                ["reported_dollars"] = e.ReportedDollars,
                ["reconciling_utilization"] = e.ReconcilingUtilization,
                ["gpu_count"] = e.GpuCount,
                ["estimated_days"] = e.EstimatedDays,
                ["cluster_gpu_capital_dollars"] = e.ClusterCapitalDollars,
                ["left_out"] = TrainingCost.LeftOut,
            };
            Console.WriteLine(JsonSerializer.Serialize(d, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return 0;
        }
        var inv = CultureInfo.InvariantCulture;
        string Q(double v) => v >= 1e12 ? (v / 1e12).ToString("0.###", inv) + "T" : v >= 1e9 ? (v / 1e9).ToString("0.###", inv) + "B"
                            : v >= 1e6 ? (v / 1e6).ToString("0.###", inv) + "M" : v >= 1e3 ? (v / 1e3).ToString("0.###", inv) + "K" : v.ToString("0.###", inv);
        string D(double v) => "$" + Q(v);
        Console.WriteLine(string.Create(inv, $"training cost of {c.ModelType} on {Q(options.Tokens)} tokens"));
        Console.WriteLine(string.Create(inv, $"  activated matmul weights  {Q(e.ActivatedMatmulParameters)} main (ModelStats.FlopsPerToken / 2: lm_head in, embedding lookup and norms out)") +
                          (e.MtpMatmulParameters > 0 ? string.Create(inv, $" + {Q(e.MtpMatmulParameters)} MTP") : ""));
        Console.WriteLine(string.Create(inv, $"  FLOPs per token           {Q(e.MatmulFlopsPerToken)} matmul (6 x weights) + {Q(e.AttentionFlopsPerToken)} attention (6 x {Q(e.AttentionFlopsPerToken / 6 / e.AverageContext)} MACs x {e.AverageContext:0} average context at sequence length {options.SequenceLength})"));
        Console.WriteLine(string.Create(inv, $"  training FLOPs            {e.TotalFlops:0.000e+00}"));
        string fp8 = e.Gpu.Fp8TeraFlops is double f8 ? FormattableString.Invariant($"{f8:0} TFLOP/s") : "none";
        Console.WriteLine(string.Create(inv, $"  GPU                       {e.Gpu.Name}: dense BF16 {e.Gpu.Bf16TeraFlops:0} TFLOP/s, FP8 {fp8}; peak used {options.Precision.ToString().ToUpperInvariant()}"));
        Console.WriteLine(string.Create(inv, $"  estimate                  {Q(e.GpuHours)} GPU-hours at {options.Utilization:0.###} utilization = {D(e.Dollars)} at ${options.GpuHourPrice:0.##}/GPU-hour"));
        if (e.ReportedGpuHours is double rh)
        {
            Console.WriteLine(string.Create(inv, $"  reported                  {Q(rh)} GPU-hours = {D(e.ReportedDollars!.Value)}") + (e.Reported is { } rep ? $" ({rep.Source})" : ""));
            Console.WriteLine(string.Create(inv, $"  reconciling utilization   {e.ReconcilingUtilization:0.000} of the {options.Precision.ToString().ToUpperInvariant()} peak " +
                                                 $"(estimate / reported = {e.GpuHours / rh:0.00})"));
        }
        if (e.GpuCount is int n)
        {
            Console.WriteLine(string.Create(inv, $"  wall clock                {e.EstimatedDays:0.0} days on {n} GPUs (estimate)") +
                              (e.ReportedGpuHours is double rh2 ? string.Create(inv, $", {rh2 / n / 24:0.0} days (reported)") : ""));
            if (e.ClusterCapitalDollars is double capital)
                Console.WriteLine(string.Create(inv, $"  cluster GPUs alone        {n} x ~{D(e.Gpu.UnitPriceDollars!.Value)} = ~{D(capital)} to buy (not in the GPU-hour figure)"));
        }
        Console.WriteLine("  not included:");
        foreach (string item in TrainingCost.LeftOut)
            Console.WriteLine("    - " + item);
        return 0;
    }
}
