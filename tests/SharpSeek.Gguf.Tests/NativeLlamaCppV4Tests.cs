// DeepSeek-V4 files written by SharpSeek, run by today's llama.cpp (de3ff81, deepseek4, through llama-logits): the
// released-format fixture (FP8 + UE8M0, MXFP4 experts) converted with --type f32 holds exactly the values llama.cpp's
// reference was computed on (tests/fixtures/llama-cpp/deepseek4/hf), so llama.cpp must reproduce it (to the last bits:
// the reference was computed on an AVX-512 machine, and llama.cpp's fp32 sums change with the SIMD width, 1.4e-6 on an
// AVX2-only Zen 3); and
// the mxfp4 type (the converter's choice: FP8 as Q8_0) must load and stay close. Skipped when llama.cpp is absent.
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model.V4;
using SharpSeek.Tests;

namespace SharpSeek.Gguf.Tests;

public sealed class NativeLlamaCppV4Tests
{
    private static readonly string Dir = Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4");

    private static int[] Ids() => File.ReadAllText(Path.Combine(Dir, "ids.txt")).Trim().Split(',').Select(int.Parse).ToArray();

    [LlamaCppTheory]
    [InlineData("f32", 1e-5)]
    [InlineData("mxfp4", 0.5)] // Q8_0 weights where the release has FP8: a different (lossy) model
    public void Llama_cpp_runs_what_convert_writes_from_the_released_format(string type, double tol)
    {
        string path = Path.Combine(Path.GetTempPath(), $"sharpseek-v4-{Guid.NewGuid():N}.gguf");
        try
        {
            using (V4Weights hf = V4Checkpoint.Load(Path.Combine(Dir, "hf")))
                V4GgufExport.Write(hf, path, V4GgufExport.ParseType(type));
            int[] ids = Ids();
            using Checkpoint r = Checkpoint.FromFiles(Path.Combine(Dir, "hf"), [Path.Combine(Dir, "hf", "reference.safetensors")], null);
            float[] want = r.ReadFloats("logits", ids.Length, 512);
            float[] llama = NativeLlamaCpp.Logits(path, ids, 512);
            double median = Enumerable.Range(0, ids.Length).Select(t => Numerics.MaxAbsDiff(want.AsSpan(t * 512, 512), llama.AsSpan(t * 512, 512))).Order().ElementAt(ids.Length / 2);
            Assert.True(median <= tol, $"{type}: median per-position max |diff| {median:G3} vs llama.cpp on gguf-py's file");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
