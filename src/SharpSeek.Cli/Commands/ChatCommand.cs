// sharpseek chat: an interactive conversation read from stdin line by line (/reset, /system TEXT, /exit), streamed
// through the model's IChatClient; reasoning (R1, or V3.1/V3.2/V4 with --think on) is dimmed on a terminal.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.AI;
using SharpSeek.Inference;
using SharpSeek.Tokenizer;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace SharpSeek.Cli;

internal static class ChatCommand
{
    public static Command Create()
    {
        var shared = new GenerationOptionSet(defaultMaxTokens: 1024);
        var system = new Option<string>("--system") { Description = "System prompt" };
        var color = new Option<string>("--color") { Description = "auto (ANSI when stdout is a terminal and NO_COLOR is unset), always or never", DefaultValueFactory = _ => "auto" };
        var format = new ChatFormatOptionSet();
        var cmd = new Command("chat", "Interactive chat: reads stdin line by line; /reset, /system TEXT, /exit") { system, color };
        foreach (Option o in shared.All.Concat(format.All))
            cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string dir = DefaultModel.Resolve(pr.GetValue(shared.Model));
            GenerationOptions options = shared.Options(pr, dir);
            bool ansi = pr.GetValue(color) switch
            {
                "always" => true,
                "never" => false,
                "auto" => !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR")),
                var v => throw new UserInputException($"--color must be auto, always or never, got '{v}'"),
            };
            ChatTemplateKind? kind = format.Kind(pr);
            format.Thinking(pr); // a bad --think value fails before the model loads
            if (V4Inspect.IsV4(dir))
                return RunV4(pr, dir, options, kind, format, shared, pr.GetValue(system), ansi);
            using ModelSession session = CliOptions.OpenSession(dir, shared.SessionOptions(pr, TokenizerLoad.Required, kind));
            using SharpSeekChatClient client = session.CreateChatClient(options, format.Render(pr, session.Template!));
            return RunChat(client, pr.GetValue(system), ansi, session.Config.MaxPositionEmbeddings);
        });
        return cmd;
    }

    // DeepSeek-V4 (deepseek4 GGUF or the released safetensors with tokenizer.json): V4's chat encoding unless --template says otherwise
    private static int RunV4(ParseResult pr, string path, GenerationOptions options, ChatTemplateKind? kind, ChatFormatOptionSet format,
                             GenerationOptionSet shared, string? system, bool ansi)
    {
        if (options.Speculative)
            throw new UserInputException("--speculative is not available for DeepSeek-V4 models yet");
        using V4Model m = V4Model.Open(path, pr.GetValue(shared.Threads), pr.GetValue(shared.IndexerPrecision));
        BpeTokenizer tokenizer = m.Tokenizer
            ?? throw new UserInputException($"{path} has no tokenizer (no tokenizer.json, or a GGUF file without one): chat needs one");
        ChatTemplate template = ChatTemplate.Create(kind ?? ChatTemplateKind.DeepSeekV4);
        using var client = new SharpSeekChatClient(new V4Generator(m.Transformer, tokenizer), template, options, System.IO.Path.GetFileName(path.TrimEnd('/')))
        {
            RenderDefaults = format.Render(pr, template),
        };
        return RunChat(client, system, ansi, m.Weights.Config.MaxPositionEmbeddings);
    }

    private static int RunChat(SharpSeekChatClient client, string? system, bool ansi, int configContext)
    {
        bool interactive = !Console.IsInputRedirected;
        string dim = ansi ? "\u001b[2m" : "", reset = ansi ? "\u001b[0m" : "";
        var history = new List<AiChatMessage>();
        string thinking = client.Template.SupportsThinking ? $", thinking {(client.RenderOptionsFor(null).Thinking ?? client.Template.DefaultThinking ? "on" : "off")}" : "";
        Console.Error.WriteLine($"chat with {client.Metadata.DefaultModelId} ({client.ModelType}, {ChatTemplate.NameOf(client.Template.Kind)} template{thinking}, " +
                                $"context {client.ContextLength}{(client.ContextLength < configContext ? $" tokens, the length it was trained on; config allows {configContext}" : "")}); " +
                                "commands: /reset, /system TEXT, /exit");
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
                            client.Generator?.Reset();
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
                var chatOptions = new ChatOptions { Instructions = system };
                // a conversation that outgrows the context is the one error a turn reports and survives
                int promptTokens = client.Tokenizer.Encode(client.RenderPrompt(history, chatOptions)).Length;
                if (promptTokens >= client.ContextLength)
                {
                    Console.Error.WriteLine($"error: the conversation has {promptTokens} tokens; the model's context is {client.ContextLength} (/reset starts again)");
                    history.RemoveAt(history.Count - 1);
                    continue;
                }
                reply = new CancellationTokenSource();
                var answer = new System.Text.StringBuilder();
                UsageDetails? usage = null;
                ChatFinishReason? finish = null;
                bool inReasoning = false;
                var clock = Stopwatch.StartNew();
                try
                {
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
                        finish = u.FinishReason ?? finish;
                        Console.Out.Flush();
                    }
                    if (inReasoning)
                        Console.Write((ansi ? "" : "</think>") + reset);
                    Console.WriteLine();
                    if (finish == ChatFinishReason.Length)
                        Console.Error.WriteLine($"{dim}(finish reason: length; the reply reached --max-tokens or the context of {client.ContextLength} tokens){reset}");
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
}
