// sharpseek convert: a checkpoint we load (FP8 included) to a llama.cpp deepseek2 GGUF file. Loading a .gguf works
// wherever --model takes a directory.
using System.CommandLine;
using SharpSeek.Formats.Gguf;
using SharpSeek.Inference;
using SharpSeek.Model.Gguf;

namespace SharpSeek.Cli;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + safetensors) or .gguf file", Required = true };
        var to = new Option<string>("--to") { Description = "Output format: gguf", DefaultValueFactory = _ => "gguf" };
        var type = new Option<string>("--type") { Description = "Weight type: bf16, q8_0, q4_k_m or f32", DefaultValueFactory = _ => "bf16" };
        var output = new Option<string>("--out") { Description = "Output .gguf file (written atomically)", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer.json to embed (default: the model directory's, when present)" };
        var name = new Option<string?>("--name") { Description = "general.name (default: the model type)" };
        var cmd = new Command("convert", "Convert a model to a llama.cpp-compatible GGUF file (deepseek2)") { model, to, type, output, tokenizer, name };
        cmd.SetAction(pr =>
        {
            if (pr.GetValue(to) != "gguf")
                throw new UserInputException($"--to '{pr.GetValue(to)}' is not supported (gguf)");
            string src = pr.GetValue(model)!;
            if (V4Inspect.IsV4(src))
                return ConvertV4(src, pr.GetValue(type)!, pr.GetValue(output)!, pr.GetValue(tokenizer), pr.GetValue(name));
            GgufFileType fileType = CliErrors.UserValue(() => GgufExport.ParseType(pr.GetValue(type)!));
            string? tok = pr.GetValue(tokenizer);
            if (tok is null && Directory.Exists(src) && File.Exists(Path.Combine(src, "tokenizer.json")))
                tok = Path.Combine(src, "tokenizer.json");
            if (tok is not null && !File.Exists(tok))
                throw new FileNotFoundException($"tokenizer not found: {tok}", tok);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            using ModelSession session = CliOptions.OpenSession(src, new ModelSessionOptions { Tokenizer = TokenizerLoad.None });
            if (tok is null)
                Console.Error.WriteLine("warning: no tokenizer.json: the GGUF file gets no vocabulary (tokenizer.ggml.model no_vocab): llama.cpp and SharpSeek run it on token ids only");
            if (session.Config.NumNextnPredictLayers > 0)
                Console.Error.WriteLine($"note: {session.Config.NumNextnPredictLayers} MTP layer(s) dropped, as llama.cpp's deepseek2 converter does");
            string outPath = pr.GetValue(output)!;
            GgufExport.Write(session.Weights, outPath, fileType, tok, pr.GetValue(name), m => Console.Error.WriteLine(m));
            Console.Error.WriteLine($"wrote {outPath} ({new FileInfo(outPath).Length / 1e6:0.0} MB, {fileType}) in {sw.Elapsed.TotalSeconds:0.0} s");
            return 0;
        });
        return cmd;
    }

    // DeepSeek-V4 (released safetensors or a deepseek4 GGUF) to a deepseek4 GGUF; routed experts stored as MXFP4 stay MXFP4
    private static int ConvertV4(string src, string type, string outPath, string? tok, string? name)
    {
        Model.V4.V4GgufType t = CliErrors.UserValue(() => Model.V4.V4GgufExport.ParseType(type));
        if (tok is null && Directory.Exists(src) && File.Exists(Path.Combine(src, "tokenizer.json")))
            tok = Path.Combine(src, "tokenizer.json");
        if (tok is not null && !File.Exists(tok))
            throw new FileNotFoundException($"tokenizer not found: {tok}", tok);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using Model.V4.V4Weights w = Model.V4.V4Weights.Load(src);
        if (tok is null)
            Console.Error.WriteLine("warning: no tokenizer.json: the GGUF file gets no vocabulary (tokenizer.ggml.model no_vocab): llama.cpp and SharpSeek run it on token ids only");
        Model.V4.V4GgufExport.Write(w, outPath, t, tok, name);
        Console.Error.WriteLine($"wrote {outPath} ({new FileInfo(outPath).Length / 1e6:0.0} MB, deepseek4 {t}) in {sw.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }
}
