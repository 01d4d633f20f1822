// Writes a loaded model back in the Hugging Face layout our loader (and transformers) read: config.json,
// model.safetensors (bf16 or fp32; what the architecture descriptor marks Fp32, the router bias, stays fp32) and
// generation_config.json, atomically.
// MTP embedding/head copies identical to the main model's are left out (the loader falls back to the shared
// ones), which keeps small shipped models small.
using System.Text.Json.Nodes;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model.Architecture;
using SharpSeek.Tensors;

namespace SharpSeek.Model;

/// <summary>Hugging Face checkpoint writer.</summary>
public static class HfExport
{
    /// <summary>Writes <paramref name="w"/> to <paramref name="directory"/>; returns the tensor count written.</summary>
    public static int Write(ModelWeights w, string directory, WeightFormat dtype, bool dropSharedMtpCopies = true)
    {
        if (dtype is not (WeightFormat.BF16 or WeightFormat.F32))
            throw new ArgumentException($"export writes bf16 or f32 safetensors, not {dtype}");
        Directory.CreateDirectory(directory);
        var writer = new SafetensorsWriter();
        writer.AddMetadata("format", "pt");
        float[]? embed = null, head = null;
        int count = 0;
        foreach ((TensorRef t, WeightMatrix? m, float[]? v) in w.EnumerateTensors())
        {
            string name = t.HfName;
            if (m is not null)
            {
                float[] values = m.ToFloatArray();
                if (t.Role == TensorRole.Embed)
                    embed = values;
                if (t.Role == TensorRole.LmHead || (t.Role == TensorRole.Embed && w.Config.TieWordEmbeddings))
                    head = values;
                if (dropSharedMtpCopies && ((t.Role == TensorRole.MtpEmbed && embed is not null && values.AsSpan().SequenceEqual(embed))
                                            || (t.Role == TensorRole.MtpHead && head is not null && values.AsSpan().SequenceEqual(head))))
                    continue;
                long[] shape = [m.Rows, m.Cols];
                if (dtype == WeightFormat.BF16)
                    writer.AddBf16(name, shape, values);
                else
                    writer.AddF32(name, shape, values);
            }
            else
            {
                if (dtype == WeightFormat.BF16 && !t.Spec.Fp32)
                    writer.AddBf16(name, [v!.Length], v);
                else
                    writer.AddF32(name, [v!.Length], v);
            }
            count++;
        }
        writer.Save(Path.Combine(directory, "model.safetensors"));
        AtomicFile.WriteText(Path.Combine(directory, "config.json"), w.Config.ToJson());
        var gen = new JsonObject { ["bos_token_id"] = w.Config.BosTokenId, ["do_sample"] = true, ["temperature"] = 0.6, ["top_p"] = 0.95 };
        if (w.Config.EosTokenIds.Length > 0)
            gen["eos_token_id"] = w.Config.EosTokenIds[0];
        AtomicFile.WriteText(Path.Combine(directory, "generation_config.json"), gen.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        return count;
    }
}
