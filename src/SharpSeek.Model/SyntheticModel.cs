// Random-weight checkpoints of any DeepSeek shape for measurement (`sharpseek synth`): Hugging Face layout,
// bf16, written tensor by tensor (never the whole model in memory) and atomically. Weights are N(0, 1/fan_in),
// norm weights around 1, router bias N(0, 0.1), so every path carries signal like the reference fixtures.
using SharpSeek.Formats;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Tensors;

namespace SharpSeek.Model;

/// <summary>Writes random checkpoints.</summary>
public static class SyntheticModel
{
    /// <summary>Every tensor name of a config with its shape, in checkpoint order (matrices [rows, cols], vectors [n]).</summary>
    public static IEnumerable<(string Name, long[] Shape)> TensorShapes(ModelConfig c)
    {
        int H = c.HiddenSize, V = c.VocabSize, Nh = c.NumAttentionHeads, Dqk = c.QkHeadDim, R = c.KvLoraRank;
        yield return (TensorNames.Embed, [V, H]);
        for (int l = 0; l < c.NumHiddenLayers + c.NumNextnPredictLayers; l++)
        {
            bool mtp = l >= c.NumHiddenLayers;
            if (mtp)
            {
                yield return (TensorNames.MtpEmbed(l), [V, H]);
                yield return (TensorNames.MtpENorm(l), [H]);
                yield return (TensorNames.MtpHNorm(l), [H]);
                yield return (TensorNames.MtpEhProj(l), [H, 2 * H]);
            }
            yield return (TensorNames.AttnNorm(l), [H]);
            if (c.QLoraRank > 0)
            {
                yield return (TensorNames.WqA(l), [c.QLoraRank, H]);
                yield return (TensorNames.QNorm(l), [c.QLoraRank]);
                yield return (TensorNames.WqB(l), [Nh * Dqk, c.QLoraRank]);
            }
            else
            {
                yield return (TensorNames.Wq(l), [Nh * Dqk, H]);
            }
            yield return (TensorNames.WkvA(l), [R + c.QkRopeHeadDim, H]);
            yield return (TensorNames.KvNorm(l), [R]);
            yield return (TensorNames.WkvB(l), [Nh * (c.QkNopeHeadDim + c.VHeadDim), R]);
            yield return (TensorNames.Wo(l), [H, Nh * c.VHeadDim]);
            yield return (TensorNames.FfnNorm(l), [H]);
            IEnumerable<(string, long[])> Mlp(string part, int width) =>
            [
                (TensorNames.Mlp(l, part, TensorNames.Gate), [width, H]),
                (TensorNames.Mlp(l, part, TensorNames.Up), [width, H]),
                (TensorNames.Mlp(l, part, TensorNames.Down), [H, width]),
            ];
            if (mtp || c.IsMoeLayer(l))
            {
                yield return (TensorNames.Router(l), [c.NRoutedExperts, H]);
                if (c.TopkMethod == TopKMethod.NoAuxTc)
                    yield return (TensorNames.RouterBias(l), [c.NRoutedExperts]);
                for (int e = 0; e < c.NRoutedExperts; e++)
                {
                    foreach (var t in Mlp(TensorNames.Expert(e), c.MoeIntermediateSize))
                        yield return t;
                }
                if (c.NSharedExperts > 0)
                {
                    foreach (var t in Mlp(TensorNames.Shared, c.MoeIntermediateSize * c.NSharedExperts))
                        yield return t;
                }
            }
            else
            {
                foreach (var t in Mlp(TensorNames.Dense, c.IntermediateSize))
                    yield return t;
            }
            if (mtp)
            {
                yield return (TensorNames.MtpHeadNorm(l), [H]);
                yield return (TensorNames.MtpHead(l), [V, H]);
            }
        }
        yield return (TensorNames.Norm, [H]);
        if (!c.TieWordEmbeddings)
            yield return (TensorNames.LmHead, [V, H]);
    }

    /// <summary>Writes config.json and model.safetensors (bf16, router bias f32) into <paramref name="directory"/>.</summary>
    public static void Write(ModelConfig c, string directory, ulong seed)
    {
        Directory.CreateDirectory(directory);
        var writer = new SafetensorsWriter();
        writer.AddMetadata("format", "pt");
        ulong i = 0;
        foreach ((string name, long[] shape) in TensorShapes(c))
        {
            ulong tensorSeed = seed * 0x9E3779B97F4A7C15UL + ++i;
            bool bias = name.EndsWith("e_score_correction_bias", StringComparison.Ordinal);
            if (bias)
            {
                var rng = new SplitMix(tensorSeed);
                float[] b = new float[shape[0]];
                for (int k = 0; k < b.Length; k++)
                    b[k] = 0.1f * rng.NextNormal();
                writer.AddF32(name, shape, b);
                continue;
            }
            bool vector = shape.Length == 1;
            float std = vector ? 0.1f : 1f / MathF.Sqrt(shape[1]);
            writer.Add(name, DType.BF16, shape, stream =>
            {
                var rng = new SplitMix(tensorSeed);
                long n = shape.Aggregate(1L, (a, d) => a * d);
                var buf = new ushort[1 << 16];
                var bytes = new byte[buf.Length * 2];
                for (long done = 0; done < n;)
                {
                    int k = (int)Math.Min(buf.Length, n - done);
                    for (int j = 0; j < k; j++)
                        buf[j] = Bf16.FromFloat((vector ? 1f : 0f) + std * rng.NextNormal());
                    Buffer.BlockCopy(buf, 0, bytes, 0, k * 2);
                    stream.Write(bytes, 0, k * 2);
                    done += k;
                }
            });
        }
        writer.Save(Path.Combine(directory, "model.safetensors"));
        AtomicFile.WriteText(Path.Combine(directory, "config.json"), c.ToJson());
    }

    /// <summary>SplitMix64 with Box-Muller normals: fast, deterministic across platforms and .NET versions.</summary>
    private sealed class SplitMix(ulong state)
    {
        private ulong _s = state;
        private float _spare;
        private bool _hasSpare;

        public ulong Next()
        {
            ulong z = _s += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public float NextNormal()
        {
            if (_hasSpare)
            {
                _hasSpare = false;
                return _spare;
            }
            double u1 = ((Next() >> 11) + 1) * (1.0 / 9007199254740993.0), u2 = (Next() >> 11) * (1.0 / 9007199254740992.0);
            double r = Math.Sqrt(-2 * Math.Log(u1)), a = 2 * Math.PI * u2;
            _spare = (float)(r * Math.Sin(a));
            _hasSpare = true;
            return (float)(r * Math.Cos(a));
        }
    }
}
