// llama.cpp (through LLamaSharp 0.30.0, llama.cpp 815a2a59, CPU backend) loads the GGUF files SharpSeek writes
// and evaluates the fixtures' token ids: in f32 it reproduces the Hugging Face reference logits, and on every
// type it agrees with SharpSeek running the same file (within the differences of activation quantization:
// llama.cpp multiplies BF16 weights with BF16-rounded activations, Q8_0/Q4_0 with q8_0 and K-quants with q8_K ones).
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tests;
using Xunit.Abstractions;

namespace SharpSeek.Gguf.Tests;

public sealed class LlamaCppInteropTests(ConvertedFixtures files, ITestOutputHelper log) : IClassFixture<ConvertedFixtures>
{
    public static IEnumerable<object[]> Folders() => Fixtures.HfFolders();

    public static IEnumerable<object[]> FoldersAndTypes() =>
        from f in Fixtures.HfFolders()
        from t in new[] { GgufFileType.BF16, GgufFileType.Q8_0, GgufFileType.Q4_K_M, GgufFileType.Q4_0 }
        select new object[] { f[0], t };

    private static int Vocab(string fixture) => ModelConfig.Load(Fixtures.Hf(fixture)).VocabSize;

    private void Report(string what, float[] want, float[] got, int vocab) => log.WriteLine($"{what}: {Logits.Describe(want, got, vocab)}");

    [Theory]
    [MemberData(nameof(Folders))]
    public void Llama_cpp_reproduces_the_reference_from_our_f32_gguf(string fixture)
    {
        int V = Vocab(fixture);
        (int[] ids, float[] reference) = FixtureModels.Reference(fixture, V);
        float[] llama = LlamaCpp.Logits(files.Gguf(fixture, GgufFileType.F32), ids, V);
        Report($"{fixture} llama.cpp f32 vs HF reference", reference, llama, V);
        Numerics.AssertClose(reference, llama, 1e-4, $"{fixture}: llama.cpp on the f32 GGUF vs the HF reference");
    }

    [Theory]
    [MemberData(nameof(FoldersAndTypes))]
    public void Llama_cpp_and_SharpSeek_agree_on_the_same_gguf(string fixture, GgufFileType type)
    {
        int V = Vocab(fixture);
        (int[] ids, _) = FixtureModels.Reference(fixture, V);
        string gguf = files.Gguf(fixture, type);
        float[] llama = LlamaCpp.Logits(gguf, ids, V);
        float[] ours = FixtureModels.SharpSeekLogits(gguf, ids);
        Report($"{fixture} {type}: llama.cpp vs SharpSeek", llama, ours, V);
        // measured (mean KL): bf16 <= 1.5e-5, q8_0 and q4_k_m <= 0.0099, q4_0 <= 0.0064 (v3-yarn-bf16 the largest)
        double tol = type == GgufFileType.BF16 ? 1e-4 : 0.02;
        double kl = Logits.MeanKl(llama, ours, V);
        Assert.True(kl <= tol, $"{fixture} {type}: SharpSeek vs llama.cpp on {Path.GetFileName(gguf)}: mean KL {kl:G3} > {tol:G3} ({Logits.Describe(llama, ours, V)})");
        Assert.True(Logits.ArgmaxAgreement(llama, ours, V) >= 0.8, $"{fixture} {type}: top tokens differ too often ({Logits.Describe(llama, ours, V)})");
    }
}
