// sharpseek logits: one uncached pass over token ids, the logits written to a safetensors file.
using System.CommandLine;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Inference;
using SharpSeek.Model;
using SharpSeek.Model.Layers;

namespace SharpSeek.Cli;

internal static class LogitsCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + safetensors) or .gguf file (DeepSeek-V4 included)", Required = true };
        var ids = new Option<string>("--ids") { Description = "Comma-separated token ids", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors file (F32 tensor 'logits' [T, V])", Required = true };
        var attention = new Option<AttentionMode>("--attention") { Description = "MLA form: auto, naive or absorbed", DefaultValueFactory = _ => AttentionMode.Auto };
        var dtype = CliOptions.Dtype();
        var indexer = CliOptions.IndexerPrecision();
        var cmd = new Command("logits", "Compute logits for token ids in one uncached pass") { model, ids, output, attention, dtype, indexer };
        cmd.SetAction(pr =>
        {
            int[] tokens = CliOptions.ParseIds(pr.GetValue(ids)!, "--ids");
            string path = pr.GetValue(model)!;
            if (V4Inspect.IsV4(path))
            {
                // DeepSeek-V4: deepseek4 GGUF or the released safetensors; --indexer-precision f32 computes as llama.cpp
                using V4Model m = V4Model.Open(path, Environment.ProcessorCount, pr.GetValue(indexer));
                CliOptions.CheckIds(tokens, m.Weights.Config.VocabSize, "--ids");
                return Write(pr.GetValue(output)!, tokens, m.Weights.Config.VocabSize, m.Transformer.Logits(tokens));
            }
            var options = new ModelSessionOptions
            {
                Dtype = CliOptions.ParseDtype(pr.GetValue(dtype)),
                Tokenizer = TokenizerLoad.None,
                IndexerPrecision = CliOptions.ParseIndexerPrecision(pr.GetValue(indexer)),
            };
            using ModelSession session = CliOptions.OpenSession(path, options);
            int V = session.Config.VocabSize;
            CliOptions.CheckIds(tokens, V, "--ids");
            return Write(pr.GetValue(output)!, tokens, V, session.CreateTransformer().Logits(tokens, new ForwardOptions { Attention = pr.GetValue(attention) }));
        });
        return cmd;
    }

    private static int Write(string path, int[] tokens, int V, float[] logits)
    {
        var writer = new SafetensorsWriter();
        writer.AddF32("logits", [tokens.Length, V], logits);
        writer.AddI64("input_ids", [tokens.Length], tokens.Select(i => (long)i).ToArray());
        writer.Save(path);
        Console.Error.WriteLine($"wrote logits [{tokens.Length}, {V}] to {path}");
        return 0;
    }
}
