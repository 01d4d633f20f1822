// Every fixture checkpoint converted to GGUF: loaded back by SharpSeek it agrees with the checkpoint (exactly for
// bf16 of bf16 weights and f32, within quantization error otherwise), and llama.cpp (LLamaSharp 0.30.0, llama.cpp
// 815a2a59) running the same file agrees with the Hugging Face reference and with SharpSeek on that file.
using SharpSeek.Formats.Gguf;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tests;
using Xunit.Abstractions;

namespace SharpSeek.Gguf.Tests;

public sealed class GgufModelTests(ConvertedFixtures files, ITestOutputHelper log) : IClassFixture<ConvertedFixtures>
{
    public static IEnumerable<object[]> Folders() => Fixtures.HfFolders();

    public static IEnumerable<object[]> FoldersAndTypes() =>
        from f in Fixtures.HfFolders()
        from t in new[] { GgufFileType.BF16, GgufFileType.Q8_0, GgufFileType.Q4_K_M, GgufFileType.Q4_0 }
        select new object[] { f[0], t };

    private static int Vocab(string fixture) => ModelConfig.Load(Fixtures.Hf(fixture)).VocabSize;

    // bf16 checkpoints (not fp32, not fp8): a bf16 GGUF holds exactly their weights
    private static bool StoredInBf16(string fixture) =>
        fixture != "v3-fp8" && File.ReadAllText(Path.Combine(Fixtures.Hf(fixture), "config.json")).Contains("\"torch_dtype\": \"bfloat16\"");

    private void Report(string what, float[] want, float[] got, int vocab) => log.WriteLine($"{what}: {Logits.Describe(want, got, vocab)}");

    [Theory]
    [MemberData(nameof(Folders))]
    public void F32_gguf_loads_back_as_the_checkpoint(string fixture)
    {
        int V = Vocab(fixture);
        (int[] ids, float[] reference) = FixtureModels.Reference(fixture, V);
        float[] hf = FixtureModels.SharpSeekLogits(files.Model(fixture), ids);
        float[] gguf = FixtureModels.SharpSeekLogits(files.Gguf(fixture, GgufFileType.F32), ids);
        Report($"{fixture} f32 GGUF vs checkpoint", hf, gguf, V);
        Numerics.AssertClose(hf, gguf, 2e-5, $"{fixture}: SharpSeek on the f32 GGUF vs on the checkpoint");
        Numerics.AssertClose(reference, gguf, 1e-3, $"{fixture}: SharpSeek on the f32 GGUF vs the HF reference");
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Bf16_gguf_loads_back_within_bf16_rounding(string fixture)
    {
        int V = Vocab(fixture);
        (int[] ids, float[] reference) = FixtureModels.Reference(fixture, V);
        float[] hf = FixtureModels.SharpSeekLogits(files.Model(fixture), ids);
        string path = files.Gguf(fixture, GgufFileType.BF16);
        float[] gguf = FixtureModels.SharpSeekLogits(path, ids);
        Report($"{fixture} bf16 GGUF vs checkpoint", hf, gguf, V);
        if (StoredInBf16(fixture))
            Numerics.AssertClose(hf, gguf, 2e-5, $"{fixture}: bf16 weights stay bf16, so the GGUF computes what the checkpoint does");
        else
        {
            double kl = Logits.MeanKl(reference, gguf, V);
            Assert.True(kl <= 1e-3, $"{fixture}: fp32/fp8 weights rounded to bf16: mean KL {kl:G3} ({Logits.Describe(reference, gguf, V)})");
        }
    }

    [Theory]
    [MemberData(nameof(FoldersAndTypes))]
    public void Quantized_gguf_agrees_with_the_reference_within_quantization_error(string fixture, GgufFileType type)
    {
        int V = Vocab(fixture);
        (int[] ids, float[] reference) = FixtureModels.Reference(fixture, V);
        float[] gguf = FixtureModels.SharpSeekLogits(files.Gguf(fixture, type), ids);
        Report($"{fixture} {type} GGUF vs reference", reference, gguf, V);
        // as in Model.Tests FormatTests: the bound is on the mean KL of the next-token distributions, since in these
        // random tiny models a small weight change can flip a near-tie routing decision and move a few logits a lot.
        // Measured (mean KL): bf16 <= 2.8e-4, q8_0 <= 0.028, q4_k_m <= 0.028 (with hidden size 64 every Q4_K row falls
        // back to Q8_0), q4_0 <= 0.16, the largest always v3-yarn-bf16 (160 positions, 2 of 8 experts).
        double tol = type switch { GgufFileType.BF16 => 1e-3, GgufFileType.Q8_0 => 0.05, GgufFileType.Q4_K_M => 0.05, _ => 0.25 };
        double kl = Logits.MeanKl(reference, gguf, V);
        Assert.True(kl <= tol, $"{fixture} {type}: mean KL {kl:G3} > {tol:G3} ({Logits.Describe(reference, gguf, V)})");
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Bf16_gguf_written_again_from_itself_is_identical(string fixture)
    {
        using var dir = new TempDir();
        string first = files.Gguf(fixture, GgufFileType.BF16), second = dir.File("again.gguf");
        using (ModelWeights w = WeightLoader.Load(first))
            GgufExport.Write(w, second, GgufFileType.BF16, Path.Combine(files.Model(fixture), "tokenizer.json"));
        using GgufFile a = GgufFile.Open(first), b = GgufFile.Open(second);
        Assert.Equal(a.Tensors.Select(t => (t.Name, t.Type, string.Join(",", t.Dims))), b.Tensors.Select(t => (t.Name, t.Type, string.Join(",", t.Dims))));
        foreach (GgufTensorInfo t in a.Tensors)
            Assert.True(a.Bytes(t).SequenceEqual(b.Bytes(b.Tensor(t.Name))), $"{fixture}: tensor {t.Name} differs after a second conversion");
        Assert.Equal(a.Keys.Where(k => k != "general.name"), b.Keys.Where(k => k != "general.name"));
    }

    [Fact]
    public void Written_file_has_llama_cpp_names_shapes_and_types()
    {
        using GgufFile f = GgufFile.Open(files.Gguf("v3-tiny", GgufFileType.Q4_K_M));
        ModelConfig c = ModelConfig.Load(Fixtures.Hf("v3-tiny"));
        int Dn = c.QkNopeHeadDim, R = c.KvLoraRank, Nh = c.NumAttentionHeads, H = c.HiddenSize;
        Assert.Equal([Dn, R, Nh], f.Tensor("blk.1.attn_k_b.weight").Dims);
        Assert.Equal([R, c.VHeadDim, Nh], f.Tensor("blk.1.attn_v_b.weight").Dims);
        Assert.Equal([H, c.MoeIntermediateSize, c.NRoutedExperts], f.Tensor("blk.1.ffn_gate_exps.weight").Dims);
        Assert.Equal([c.MoeIntermediateSize, H, c.NRoutedExperts], f.Tensor("blk.1.ffn_down_exps.weight").Dims);
        Assert.Equal(GgmlType.F32, f.Tensor("blk.1.ffn_gate_inp.weight").Type);
        Assert.Equal(GgmlType.F32, f.Tensor("blk.1.exp_probs_b.bias").Type);
        Assert.Equal(GgmlType.F32, f.Tensor("blk.0.attn_norm.weight").Type);
        Assert.Equal([c.QLoraRank, Nh * c.QkHeadDim], f.Tensor("blk.0.attn_q_b.weight").Dims);
        Assert.False(f.Contains("blk.3.attn_norm.weight")); // the MTP layer is dropped
        Assert.False(f.Contains("blk.0.attn_kv_b.weight"));
        Assert.Equal(15L, f.GetInteger("general.file_type"));
        foreach (GgufTensorInfo t in f.Tensors.Where(t => t.Dims.Length > 1 && !t.Name.Contains("gate_inp")))
            Assert.Contains(t.Type, new[] { GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0, GgmlType.F16 });
    }

    [Fact]
    public void Fp8_checkpoint_converts_with_fp32_dequantization()
    {
        // the v3-fp8 weights are fp8 x block scale products kept in fp32: the f32 GGUF must compute what the checkpoint does
        (int[] ids, _) = FixtureModels.Reference("v3-fp8", Vocab("v3-fp8"));
        float[] hf = FixtureModels.SharpSeekLogits(files.Model("v3-fp8"), ids);
        float[] gguf = FixtureModels.SharpSeekLogits(files.Gguf("v3-fp8", GgufFileType.F32), ids);
        Numerics.AssertClose(hf, gguf, 2e-5, "v3-fp8 f32 GGUF");
    }

    [Fact]
    public void Unexpected_or_missing_tensors_are_reported_with_the_file()
    {
        using var dir = new TempDir();
        string src = files.Gguf("v2-lite-tiny", GgufFileType.Q8_0);
        using GgufFile f = GgufFile.Open(src);
        // copy the file with one tensor renamed (same length, so nothing else moves)
        byte[] bytes = File.ReadAllBytes(src);
        byte[] from = System.Text.Encoding.ASCII.GetBytes("blk.2.ffn_up_shexp.weight"), to = System.Text.Encoding.ASCII.GetBytes("blk.2.ffn_up_sharp.weight");
        int at = bytes.AsSpan().IndexOf(from);
        Assert.True(at > 0);
        to.CopyTo(bytes, at);
        string bad = dir.File("renamed.gguf");
        File.WriteAllBytes(bad, bytes);
        var e = Assert.Throws<InvalidDataException>(() => WeightLoader.Load(bad).Dispose());
        Assert.Contains(bad, e.Message);
        Assert.Contains("blk.2.ffn_up_shexp.weight", e.Message);
    }
}
