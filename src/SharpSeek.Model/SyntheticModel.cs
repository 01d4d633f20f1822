// Random-weight checkpoints of any DeepSeek shape for measurement (`sharpseek synth`): Hugging Face layout,
// bf16, written tensor by tensor (never the whole model in memory) and atomically. Weights are N(0, 1/fan_in),
// norm weights around 1, router bias N(0, 0.1), so every path carries signal like the reference fixtures.
using SharpSeek.Formats;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model.Architecture;
using SharpSeek.Tensors;

namespace SharpSeek.Model;

/// <summary>Writes random checkpoints.</summary>
public static class SyntheticModel
{
    /// <summary>Every tensor name of a config with its shape, in checkpoint order (matrices [rows, cols], vectors [n]).</summary>
    public static IEnumerable<(string Name, long[] Shape)> TensorShapes(ModelConfig c)
    {
        foreach (TensorRef t in c.GetArchitecture().CheckpointTensors(c))
            yield return (t.HfName, t.Shape(c));
    }

    /// <summary>Writes config.json and model.safetensors (bf16, router bias f32) into <paramref name="directory"/>.</summary>
    public static void Write(ModelConfig c, string directory, ulong seed)
    {
        Directory.CreateDirectory(directory);
        var writer = new SafetensorsWriter();
        writer.AddMetadata("format", "pt");
        ulong i = 0;
        foreach (TensorRef t in c.GetArchitecture().CheckpointTensors(c))
        {
            string name = t.HfName;
            long[] shape = t.Shape(c);
            ulong tensorSeed = seed * 0x9E3779B97F4A7C15UL + ++i;
            if (t.Role == TensorRole.RouterBias)
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
