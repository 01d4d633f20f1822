// sharpseek eval: perplexity and bits per byte of a text file under a model.
using System.CommandLine;
using System.Text.Json;
using SharpSeek.Inference;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tensors;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class EvalCommands
{
    public static IEnumerable<Command> Create() => [Eval()];

    private static Command Eval()
    {
        var model = DefaultModel.Option();
        var file = new Option<string>("--text-file") { Description = "UTF-8 text to score", Required = true };
        var window = new Option<int>("--window") { Description = "Tokens per non-overlapping window", DefaultValueFactory = _ => 256 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var dtype = PerfCommands.DtypeOption();
        var cmd = new Command("eval", "Perplexity and bits per byte of a text") { model, file, window, json, threads, dtype };
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            string dir = DefaultModel.Resolve(pr.GetValue(model));
            string path = pr.GetValue(file)!;
            if (!File.Exists(path))
                throw new FileNotFoundException($"text file not found: {path}", path);
            string text = File.ReadAllText(path);
            BpeTokenizer tok = GgufModel.LoadTokenizerFor(dir);
            using ModelWeights w = ModelLoading.Load(dir, PerfCommands.LoadOptionsFor(pr.GetValue(dtype)));
            using var be = new ThreadedBackend(Math.Max(1, pr.GetValue(threads)));
            var sw = System.Diagnostics.Stopwatch.StartNew();
            EvalResult r = Evaluator.Evaluate(new Transformer(w, be), tok, text, pr.GetValue(window));
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
                    window = pr.GetValue(window),
                    seconds = sw.Elapsed.TotalSeconds,
                }, new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                Console.WriteLine($"{path}: {r.Tokens:N0} tokens in {r.Windows} windows of {pr.GetValue(window)}, {r.Bytes:N0} bytes");
                Console.WriteLine($"perplexity {r.Perplexity:0.000}, bits per byte {r.BitsPerByte:0.0000} ({sw.Elapsed.TotalSeconds:0.0} s)");
            }
            return 0;
        }));
        return cmd;
    }
}

/// <summary>The model the main job runs when no --model is given: models/sharpseek-mini, shipped in the repository.</summary>
internal static class DefaultModel
{
    public const string RelativePath = "models/sharpseek-mini";

    public static Option<string> Option() => new("--model")
    {
        Description = $"Model directory or .gguf file (default: {RelativePath}, the model shipped with SharpSeek; or $SHARPSEEK_MODEL)",
    };

    /// <summary>The given path, else $SHARPSEEK_MODEL, else models/sharpseek-mini under the current directory or above the executable.</summary>
    public static string Resolve(string? given)
    {
        if (!string.IsNullOrEmpty(given))
            return given;
        string? env = Environment.GetEnvironmentVariable("SHARPSEEK_MODEL");
        if (!string.IsNullOrEmpty(env))
            return env;
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (string? d = start; d is not null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, RelativePath);
                if (File.Exists(Path.Combine(candidate, "config.json")))
                    return candidate;
            }
        }
        throw new FileNotFoundException($"no --model given and the default model {RelativePath} (config.json + model.safetensors) was not found here or above the executable");
    }
}
