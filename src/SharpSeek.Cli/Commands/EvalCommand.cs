// sharpseek eval: perplexity and bits per byte of a text file under a model.
using System.CommandLine;
using System.Text.Json;
using SharpSeek.Inference;

namespace SharpSeek.Cli;

internal static class EvalCommand
{
    public static Command Create()
    {
        var model = DefaultModel.Option();
        var file = new Option<string>("--text-file") { Description = "UTF-8 text to score", Required = true };
        var window = new Option<int>("--window") { Description = "Tokens per non-overlapping window", DefaultValueFactory = _ => 256 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var threads = CliOptions.Threads();
        var dtype = CliOptions.Dtype();
        var indexer = CliOptions.IndexerPrecision();
        var cmd = new Command("eval", "Perplexity and bits per byte of a text") { model, file, window, json, threads, dtype, indexer };
        cmd.SetAction(pr =>
        {
            string dir = DefaultModel.Resolve(pr.GetValue(model));
            string path = pr.GetValue(file)!;
            int w = pr.GetValue(window);
            if (w < 2)
                throw new UserInputException($"--window must be at least 2, got {w}");
            if (!File.Exists(path))
                throw new FileNotFoundException($"text file not found: {path}", path);
            string text = File.ReadAllText(path);
            var options = new ModelSessionOptions
            {
                Dtype = CliOptions.ParseDtype(pr.GetValue(dtype)),
                IndexerPrecision = CliOptions.ParseIndexerPrecision(pr.GetValue(indexer)),
                Threads = Math.Max(1, pr.GetValue(threads)),
                Tokenizer = TokenizerLoad.Required,
            };
            using ModelSession session = CliOptions.OpenSession(dir, options);
            if (w > session.Config.MaxPositionEmbeddings)
                throw new UserInputException($"--window {w} exceeds the model's max_position_embeddings {session.Config.MaxPositionEmbeddings}");
            if (session.Tokenizer!.Encode(text).Length < 2)
                throw new InvalidDataException($"{path}: the text has fewer than 2 tokens");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            EvalResult r = Evaluator.Evaluate(session.CreateTransformer(), session.Tokenizer, text, w);
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    perplexity = r.Perplexity,
                    bits_per_byte = r.BitsPerByte,
                    tokens = r.Tokens,
                    scored_tokens = r.ScoredTokens,
                    bytes = r.Bytes,
                    windows = r.Windows,
                    window = w,
                    seconds = sw.Elapsed.TotalSeconds,
                }, new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                Console.WriteLine($"{path}: {r.Tokens:N0} tokens in {r.Windows} windows of {w}, {r.Bytes:N0} bytes");
                Console.WriteLine($"perplexity {r.Perplexity:0.000}, bits per byte {r.BitsPerByte:0.0000} ({sw.Elapsed.TotalSeconds:0.0} s)");
            }
            return 0;
        });
        return cmd;
    }
}
