// sharpseek serve: the OpenAI-compatible HTTP server (SharpSeek.Server) over one model with continuous batching.
// Binds 127.0.0.1 unless --host says otherwise; --api-key (or $SHARPSEEK_API_KEY) guards every endpoint but /health
// and the chat page. --template and --think (as chat's) set the chat format and the default thinking mode, which a
// request's "thinking" field overrides. Prints the URL once listening; Ctrl+C or SIGTERM stops it.
using System.CommandLine;
using SharpSeek.Inference;
using SharpSeek.Server;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class ServeCommand
{
    public static Command Create()
    {
        var model = DefaultModel.Option();
        var host = new Option<string>("--host") { Description = "Address to bind: 127.0.0.1 (default, this machine only), 0.0.0.0 or :: for every interface", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 picks a free one)", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string>("--api-key") { Description = "Require 'Authorization: Bearer KEY' (default: $SHARPSEEK_API_KEY; none when unset)" };
        var parallel = new Option<int>("--parallel") { Description = "Sequences decoded together in one batch", DefaultValueFactory = _ => 16 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests waiting beyond the batch before 503", DefaultValueFactory = _ => 256 };
        var ctx = new Option<int>("--ctx") { Description = "Context per sequence, prompt plus output (default: the model's max_position_embeddings)" };
        var stepTokens = new Option<int>("--step-tokens") { Description = "Token slots per batched step (decode + prefill chunks)", DefaultValueFactory = _ => 512 };
        var prefixCache = new Option<int>("--prefix-cache-mb") { Description = "MiB of finished requests' latent caches kept for prefix reuse (0: off)", DefaultValueFactory = _ => 256 };
        var lanes = new Option<int>("--lanes") { Description = "Lanes a step's sequences are split into, each on its own thread (0: automatic, one per thread for a small model with 8+ sequences per lane; 1: one forward per step)", DefaultValueFactory = _ => 0 };
        var maxBody = new Option<int>("--max-body-kb") { Description = "Largest request body in KiB (larger: 413)", DefaultValueFactory = _ => 4096 };
        var threads = CliOptions.Threads();
        var dtype = CliOptions.Dtype();
        var cacheType = CliOptions.CacheType("f32");
        var format = new ChatFormatOptionSet();
        var cmd = new Command("serve", "Serve the model over HTTP with the OpenAI API (chat, completions, models, health, metrics) and a chat page")
        { model, host, port, apiKey, parallel, maxQueue, ctx, stepTokens, prefixCache, lanes, maxBody, threads, dtype, cacheType };
        foreach (Option o in format.All)
            cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string dir = DefaultModel.Resolve(pr.GetValue(model));
            int p = pr.GetValue(port), n = pr.GetValue(parallel), q = pr.GetValue(maxQueue), c = pr.GetValue(ctx);
            if (p is < 0 or > 65535)
                throw new UserInputException($"--port must be in 0..65535, got {p}");
            if (n < 1)
                throw new UserInputException($"--parallel must be >= 1, got {n}");
            if (q < 0)
                throw new UserInputException($"--max-queue must be >= 0, got {q}");
            if (c < 0)
                throw new UserInputException($"--ctx must be >= 0, got {c}");
            if (pr.GetValue(stepTokens) < 1)
                throw new UserInputException($"--step-tokens must be >= 1, got {pr.GetValue(stepTokens)}");
            if (pr.GetValue(prefixCache) < 0)
                throw new UserInputException($"--prefix-cache-mb must be >= 0, got {pr.GetValue(prefixCache)}");
            if (pr.GetValue(lanes) < 0)
                throw new UserInputException($"--lanes must be >= 0, got {pr.GetValue(lanes)}");
            if (pr.GetValue(maxBody) < 1)
                throw new UserInputException($"--max-body-kb must be >= 1, got {pr.GetValue(maxBody)}");
            ChatTemplateKind? kind = format.Kind(pr);
            format.Thinking(pr); // a bad --think value fails before the model loads
            string? key = pr.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("SHARPSEEK_API_KEY");
            if (key is { Length: 0 })
                key = null;
            var sessionOptions = new ModelSessionOptions
            {
                Dtype = CliOptions.ParseDtype(pr.GetValue(dtype)),
                Threads = CliOptions.PositiveThreads(pr.GetValue(threads)),
                CacheType = CliOptions.ParseCacheType(pr.GetValue(cacheType)),
                Tokenizer = TokenizerLoad.Required,
                Template = kind,
            };
            using ModelSession session = CliOptions.OpenSession(dir, sessionOptions);
            if (c > session.Config.MaxPositionEmbeddings)
                throw new UserInputException($"--ctx {c} exceeds the model's max_position_embeddings {session.Config.MaxPositionEmbeddings}");
            var options = new ServerOptions
            {
                Host = pr.GetValue(host)!,
                Port = p,
                ApiKey = key,
                MaxRequestBodyBytes = pr.GetValue(maxBody) * 1024L,
                RenderDefaults = format.Render(pr, session.Template!),
                Batching = new BatchSchedulerOptions
                {
                    MaxParallel = n,
                    MaxQueue = q,
                    ContextLength = c,
                    MaxStepTokens = pr.GetValue(stepTokens),
                    PrefixCacheBytes = pr.GetValue(prefixCache) * (1L << 20),
                    Lanes = pr.GetValue(lanes),
                    CacheType = sessionOptions.CacheType,
                },
            };
            return Serve(session, options).GetAwaiter().GetResult();
        });
        return cmd;
    }

    private static async Task<int> Serve(ModelSession session, ServerOptions options)
    {
        SharpSeekServer server = CliErrors.UserValue(() => SharpSeekServer.Create(session, options));
        await using (server.ConfigureAwait(false))
        {
            try
            {
                await server.StartAsync().ConfigureAwait(false);
            }
            catch (IOException e) // address in use, or not an address of this machine
            {
                throw new UserInputException($"cannot listen on {options.Host}:{options.Port}: {e.Message}", e);
            }
            ChatTemplate t = server.Session.Template!;
            string thinking = t.SupportsThinking ? $", thinking {(t.IsThinking(options.RenderDefaults) ? "on" : "off")} by default" : "";
            Console.WriteLine($"serving {server.ModelId} ({ChatTemplate.NameOf(t.Kind)} template{thinking}) at {server.Url}/ " +
                              $"(OpenAI API under {server.Url}/v1{(options.ApiKey is null ? "" : ", API key required")}); Ctrl+C stops");
            await server.WaitForShutdownAsync().ConfigureAwait(false);
        }
        return 0;
    }
}
