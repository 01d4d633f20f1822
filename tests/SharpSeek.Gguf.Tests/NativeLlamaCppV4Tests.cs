// DeepSeek-V4 files written by SharpSeek, run by today's llama.cpp (de3ff81, deepseek4, through llama-logits): the
// released-format fixture (FP8 + UE8M0, MXFP4 experts) converted with --type f32 holds exactly the values of gguf-py's
// file of it (tests/fixtures/llama-cpp/deepseek4/hf/model.gguf), so llama.cpp must give the same logits on both (run
// by the same build: llama.cpp's own sums change between machines, 1.4e-6 from the stored reference on an AVX2-only
// Zen 3, 0.0059 on an Intel Emerald Rapids); and
// the mxfp4 type (the converter's choice: FP8 as Q8_0) must load and stay close. Skipped when llama.cpp is absent.
using SharpSeek.Model.V4;
using SharpSeek.Tests;

namespace SharpSeek.Gguf.Tests;

public sealed class NativeLlamaCppV4Tests
{
    private static readonly string Dir = Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4");

    // llama.cpp on gguf-py's file of the same values, run here once for both cases: the stored reference (an AMD
    // AVX-512 machine's run) is not reproduced by every build (0.0059 median on an Intel Emerald Rapids, where
    // llama.cpp's own file gives the same 0.0059), so the two files are compared through the same build
    private static readonly Lazy<float[]> s_reference = new(() => NativeLlamaCpp.Logits(Path.Combine(Dir, "hf", "model.gguf"), Ids(), 512));

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
            float[] want = s_reference.Value;
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
