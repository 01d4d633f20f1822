// GGUF verbs: convert (a checkpoint we load, FP8 included, to a llama.cpp deepseek2 GGUF file) and gguf-info
// (metadata and tensor table of a GGUF file). Loading a .gguf works wherever --model takes a directory.
using System.CommandLine;
using SharpSeek.Formats.Gguf;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;

namespace SharpSeek.Cli;

internal static class GgufCommands
{
    public static IEnumerable<Command> Create() => [Convert(), Info()];

    private static Command Convert()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + safetensors) or .gguf file", Required = true };
        var to = new Option<string>("--to") { Description = "Output format: gguf", DefaultValueFactory = _ => "gguf" };
        var type = new Option<string>("--type") { Description = "Weight type: bf16, q8_0, q4_k_m or f32", DefaultValueFactory = _ => "bf16" };
        var output = new Option<string>("--out") { Description = "Output .gguf file (written atomically)", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer.json to embed (default: the model directory's, when present)" };
        var name = new Option<string?>("--name") { Description = "general.name (default: the model type)" };
        var cmd = new Command("convert", "Convert a model to a llama.cpp-compatible GGUF file (deepseek2)") { model, to, type, output, tokenizer, name };
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            if (pr.GetValue(to) != "gguf")
                throw new ArgumentException($"--to '{pr.GetValue(to)}' is not supported (gguf)");
            GgufFileType fileType = GgufExport.ParseType(pr.GetValue(type)!);
            string src = pr.GetValue(model)!;
            string? tok = pr.GetValue(tokenizer);
            if (tok is null && Directory.Exists(src) && File.Exists(Path.Combine(src, "tokenizer.json")))
                tok = Path.Combine(src, "tokenizer.json");
            if (tok is not null && !File.Exists(tok))
                throw new FileNotFoundException($"tokenizer not found: {tok}", tok);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            using ModelWeights w = ModelLoading.Load(src);
            if (tok is null)
                Console.Error.WriteLine("warning: no tokenizer.json: the GGUF file gets no tokenizer.ggml.* keys (llama.cpp needs them to load it)");
            if (w.Config.NumNextnPredictLayers > 0)
                Console.Error.WriteLine($"note: {w.Config.NumNextnPredictLayers} MTP layer(s) dropped, as llama.cpp's deepseek2 converter does");
            string outPath = pr.GetValue(output)!;
            GgufExport.Write(w, outPath, fileType, tok, pr.GetValue(name), m => Console.Error.WriteLine(m));
            Console.Error.WriteLine($"wrote {outPath} ({new FileInfo(outPath).Length / 1e6:0.0} MB, {fileType}) in {sw.Elapsed.TotalSeconds:0.0} s");
            return 0;
        }));
        return cmd;
    }

    private static Command Info()
    {
        var file = new Option<string>("--file") { Description = "A .gguf file", Required = true };
        var tensors = new Option<bool>("--tensors") { Description = "List every tensor" };
        var cmd = new Command("gguf-info", "Print a GGUF file's metadata and tensor summary") { file, tensors };
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using GgufFile f = GgufFile.Open(pr.GetValue(file)!);
            Console.WriteLine($"GGUF v{f.Version}, {f.Keys.Count} keys, {f.Tensors.Count} tensors, alignment {f.Alignment}, data at {f.DataOffset}");
            foreach (string key in f.Keys)
                Console.WriteLine($"  {key,-56} {f.Metadata[key]}");
            var byType = f.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key);
            foreach (var g in byType)
                Console.WriteLine($"  {GgmlTypes.Name(g.Key),-8} {g.Count(),6} tensors {g.Sum(t => t.ByteLength) / 1e6,12:0.0} MB");
            if (pr.GetValue(tensors))
            {
                foreach (GgufTensorInfo t in f.Tensors)
                    Console.WriteLine($"  {t.Name,-40} {GgmlTypes.Name(t.Type),-6} {t.DimsText}");
            }
            return 0;
        }));
        return cmd;
    }
}
