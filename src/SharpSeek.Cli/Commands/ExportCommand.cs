// sharpseek export: a model (any format we load, a training checkpoint included) to a compact Hugging Face
// checkpoint directory, with its tokenizer files; with --average, the element-wise mean of several checkpoints of one
// architecture (checkpoint averaging, as fairseq's average_checkpoints.py: the points of a noisy run's last stretch).
using System.CommandLine;
using SharpSeek.Inference;
using SharpSeek.Model;
using SharpSeek.Tensors;

namespace SharpSeek.Cli;

internal static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory or .gguf file", Required = true };
        var output = new Option<string>("--out") { Description = "Output directory", Required = true };
        var type = new Option<string>("--type") { Description = "bf16 or f32", DefaultValueFactory = _ => "bf16" };
        var keep = new Option<bool>("--keep-mtp-copies") { Description = "Also write MTP embedding/head copies identical to the main ones" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Directory with tokenizer.json and tokenizer_config.json to copy (default: the model directory)" };
        var splitDigits = new Option<bool>("--split-digits") { Description = "Write tokenizer.json without the merges that join digits, so every digit is its own token" };
        var average = new Option<string[]>("--average")
        {
            Description = "Checkpoint directories averaged in: the output's weights are the element-wise mean of --model's and these (same architecture)",
            AllowMultipleArgumentsPerToken = true,
        };
        var cmd = new Command("export", "Write a model as a Hugging Face checkpoint (config.json, model.safetensors, tokenizer files)") { model, output, type, keep, tokenizer, splitDigits, average };
        cmd.SetAction(pr =>
        {
            string src = pr.GetValue(model)!, dst = pr.GetValue(output)!;
            string typeName = pr.GetValue(type)!;
            WeightFormat dtype = CliErrors.UserValue(() => WeightConversion.ParseName(typeName));
            if (dtype is not (WeightFormat.BF16 or WeightFormat.F32))
                throw new UserInputException($"--type must be bf16 or f32, got '{typeName}'");
            static bool Same(string a, string b) => Path.GetFullPath(a).TrimEnd('/') == Path.GetFullPath(b).TrimEnd('/');
            if (Same(src, dst))
                throw new UserInputException("--out must differ from --model");
            string[] others = pr.GetValue(average) ?? [];
            foreach (string o in others)
            {
                if (!Directory.Exists(o))
                    throw new UserInputException($"--average: no checkpoint directory {o}");
                if (Same(o, dst))
                    throw new UserInputException("--out must differ from every --average directory");
            }
            int n;
            int? trained;
            if (others.Length > 0)
            {
                if (!Directory.Exists(src))
                    throw new UserInputException("--average needs --model to be a checkpoint directory");
                trained = ModelSession.ReadTrainedLength(src);
                Training.ModelParameters mean = Training.ModelParameters.Average([src, .. others]);
                n = HfExport.Write(mean.Weights, dst, dtype, dropSharedMtpCopies: !pr.GetValue(keep));
                foreach (string o in others)
                {
                    if (ModelSession.ReadTrainedLength(o) is int t)
                        trained = Math.Min(t, trained ?? t); // the shortest length any of them was trained on
                }
                Console.Error.WriteLine($"averaged {others.Length + 1} checkpoints");
            }
            else
            {
                using ModelSession session = CliOptions.OpenSession(src, new ModelSessionOptions { Tokenizer = TokenizerLoad.None });
                n = HfExport.Write(session.Weights, dst, dtype, dropSharedMtpCopies: !pr.GetValue(keep));
                trained = session.TrainedLength;
            }
            if (trained is int length)
                Training.TrainCheckpoint.RecordLength(dst, length); // the length it was trained on stays with the model
            string? tokDir = pr.GetValue(tokenizer) ?? (Directory.Exists(src) ? src : null);
            if (tokDir is not null && File.Exists(tokDir))
                tokDir = Path.GetDirectoryName(Path.GetFullPath(tokDir));
            if (pr.GetValue(tokenizer) is not null && !File.Exists(Path.Combine(tokDir!, "tokenizer.json")))
                throw new FileNotFoundException($"--tokenizer: no tokenizer.json in {tokDir}");
            if (tokDir is not null)
            {
                foreach (string f in new[] { "tokenizer.json", "tokenizer_config.json" })
                {
                    if (File.Exists(Path.Combine(tokDir, f)))
                        File.Copy(Path.Combine(tokDir, f), Path.Combine(dst, f), overwrite: true);
                }
            }
            if (pr.GetValue(splitDigits))
            {
                string tokPath = Path.Combine(dst, "tokenizer.json");
                if (!File.Exists(tokPath))
                    throw new UserInputException("--split-digits: the model has no tokenizer.json (give --tokenizer)");
                (string json, int removed) = Tokenizer.TokenizerEdits.DropDigitMerges(File.ReadAllText(tokPath), tokPath);
                Formats.Safetensors.AtomicFile.WriteText(tokPath, json);
                Console.Error.WriteLine($"tokenizer.json: {removed} merges joining digits removed");
            }
            Console.Error.WriteLine($"wrote {n} tensors to {dst} ({new FileInfo(Path.Combine(dst, "model.safetensors")).Length / 1e6:0.0} MB)");
            return 0;
        });
        return cmd;
    }
}
