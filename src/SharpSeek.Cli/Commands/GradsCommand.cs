// sharpseek grads: the mean next-token cross-entropy of a batch and its gradient for every weight (fp32), for
// checking against a reference.
using System.CommandLine;
using System.Globalization;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Training;

namespace SharpSeek.Cli;

internal static class GradsCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + safetensors, any weight format)", Required = true };
        var ids = new Option<string>("--ids") { Description = "safetensors file with I64 'input_ids' [B, T]", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors: F32 'loss' [1] and 'grad.NAME' per weight", Required = true };
        var threads = new Option<int>("--threads") { Description = "Worker threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var cmd = new Command("grads", "Mean next-token cross-entropy of a batch and its gradient for every weight (fp32)") { model, ids, output, threads };
        cmd.SetAction(pr =>
        {
            string idsPath = pr.GetValue(ids)!;
            long[] raw;
            long[] shape;
            using (Checkpoint f = Checkpoint.FromFiles(Path.GetDirectoryName(Path.GetFullPath(idsPath))!, [idsPath], weightMap: null))
            {
                if (!f.Contains("input_ids"))
                    throw new InvalidDataException($"{idsPath}: no tensor 'input_ids'");
                shape = f.Info("input_ids").Shape;
                raw = f.ReadInt64("input_ids");
            }
            if (shape.Length is not (1 or 2))
                throw new InvalidDataException($"{idsPath}: input_ids has shape [{string.Join(", ", shape)}], expected [B, T]");
            int B = shape.Length == 2 ? (int)shape[0] : 1, T = (int)shape[^1];
            ModelParameters p = ModelParameters.Load(pr.GetValue(model)!);
            int V = p.Config.VocabSize;
            foreach (long v in raw)
            {
                if ((ulong)v >= (ulong)V)
                    throw new InvalidDataException($"{idsPath}: token id {v} is outside the model's vocabulary of {V}");
            }
            int[] inputs = raw.Select(v => (int)v).ToArray();
            var targets = new int[inputs.Length];
            for (int b = 0; b < B; b++)
            {
                for (int t = 0; t < T; t++)
                    targets[b * T + t] = t + 1 < T ? inputs[b * T + t + 1] : -1;
            }
            int n = pr.GetValue(threads) > 0 ? pr.GetValue(threads) : Environment.ProcessorCount;
            using var be = new Tensors.ThreadedBackend(n);
            var tm = new TrainingModel(p, new TrainingModelOptions { BatchSize = B, SequenceLength = T, Backend = be });
            p.ZeroGrad();
            LossBreakdown loss = tm.ForwardBackward(inputs, targets);
            var w = new SafetensorsWriter();
            w.AddF32("loss", [1], [(float)loss.Ce]);
            int L = p.Config.NumHiddenLayers;
            foreach (Parameter t in p.Trainable)
            {
                if (IsMtp(t.Name, L))
                    continue; // the MTP layer is not part of this loss
                w.AddF32("grad." + t.Name, t.Shape, t.Grad.ToArray());
            }
            w.Save(pr.GetValue(output)!);
            Console.Error.WriteLine($"loss {loss.Ce.ToString("G9", CultureInfo.InvariantCulture)}; wrote gradients to {pr.GetValue(output)}");
            return 0;
        });
        return cmd;
    }

    private static bool IsMtp(string name, int layers)
    {
        const string prefix = "model.layers.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal))
            return false;
        int dot = name.IndexOf('.', prefix.Length);
        return int.TryParse(name.AsSpan(prefix.Length, dot - prefix.Length), out int l) && l >= layers;
    }
}
