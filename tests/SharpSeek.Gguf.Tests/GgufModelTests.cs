// Every fixture checkpoint converted to GGUF: loaded back by SharpSeek it agrees with the checkpoint (exactly for
// bf16 of bf16 weights and f32, within quantization error otherwise), and llama.cpp (LLamaSharp 0.30.0, llama.cpp
// 815a2a59) running the same file agrees with the Hugging Face reference and with SharpSeek on that file.
using SharpSeek.Formats.Gguf;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;
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

    public static IEnumerable<object[]> SyntheticQuantized() =>
        from shape in new[] { "v3-mtp-256", "v2-lite-tied-256" }
        from t in new[] { GgufFileType.Q8_0, GgufFileType.Q4_K_M, GgufFileType.Q4_0 }
        select new object[] { shape, t };

    [Theory]
    [MemberData(nameof(SyntheticQuantized))]
    public void Quantized_kv_b_halves_serve_the_absorbed_decode(string shape, GgufFileType type)
    {
        // the fixtures' heads are too narrow for quantized halves (they stay F16 / F32); these shapes have Dn = 32, R = 256
        using var dir = new TempDir();
        ModelConfig shapeConfig = NativeLlamaCppTests.Synthetic(shape);
        string checkpoint = Path.Combine(dir.Path, shape), gguf = dir.File($"{shape}-{type}.gguf");
        SyntheticModel.Write(shapeConfig, checkpoint, seed: 5);
        File.WriteAllText(Path.Combine(checkpoint, "tokenizer.json"), FixtureModels.ByteLevelTokenizerJson());
        using (ModelWeights source = WeightLoader.Load(checkpoint))
            GgufExport.Write(source, gguf, type, Path.Combine(checkpoint, "tokenizer.json"));
        int V = shapeConfig.VocabSize;
        int[] ids = Enumerable.Range(0, 40).Select(i => (i * 131 + 7) % V).ToArray();
        string fixture = shape;
        using ModelWeights w = WeightLoader.Load(gguf);
        ModelConfig c = w.Config;
        int Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dv = c.VHeadDim, R = c.KvLoraRank;
        var rng = new Random(7);
        foreach (LayerWeights layer in w.Layers)
        {
            // attn_k_b / attn_v_b are quantized: the absorbed products read them as stored
            var split = Assert.IsType<SplitKvBMatrix>(layer.Attn.WkvB);
            Assert.IsType<F32Matrix>(split.Dense); // prefill's copy holds the halves' exact values
            Assert.True(split.ByteSize < split.Dense.ByteSize / 2, $"layer {layer.Index}: the halves ({split.ByteSize} B) should be smaller than a bf16 kv_b ({split.Dense.ByteSize / 2} B)");
            // per head against fp32 products of the halves' exact values: the halves' own products (quantized activations:
            // int16 against Q8_0 / Q4_0 rows, int8 against Q4_K / Q6_K) and the fp32 copy prefill uses
            var kRow = new float[Dn];
            var vRow = new float[R];
            for (int h = 0; h < Nh; h++)
            {
                float[] q = Enumerable.Range(0, Dn).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
                float[] ob = Enumerable.Range(0, R).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
                var exactQ = new double[R];
                for (int r = 0; r < R; r++)
                {
                    split.KeyHalf.ReadRow(h * R + r, kRow);
                    exactQ[r] = kRow.Zip(q, (a, b) => (double)a * b).Sum();
                }
                var exactO = new double[Dv];
                for (int j = 0; j < Dv; j++)
                {
                    split.ValueHalf.ReadRow(h * Dv + j, vRow);
                    exactO[j] = vRow.Zip(ob, (a, b) => (double)a * b).Sum();
                }
                float[] qt = new float[R], qtDense = new float[R], o = new float[Dv], oDense = new float[Dv];
                split.AbsorbQuery(h, q, qt);
                split.Dense.MatVecTransposedAdd(q, qtDense, h * (Dn + Dv), Dn);
                split.ApplyValue(h, ob, o);
                split.Dense.MatVec(ob, oDense, h * (Dn + Dv) + Dn, Dv);
                AssertNear(exactQ, qt, split.KeyHalf.InputFormat, $"layer {layer.Index} head {h}: W_UK^T q from attn_k_b ({split.KeyHalf.Format})", qtDense);
                AssertNear(exactO, o, split.ValueHalf.InputFormat, $"layer {layer.Index} head {h}: W_UV o from attn_v_b ({split.ValueHalf.Format})", oDense);
            }
        }
        // the decode path (absorbed, one token at a time over the cache) against one uncached pass of the same file
        float[] full = new Transformer(w).Logits(ids), decode = FixtureModels.SharpSeekDecodeLogits(w, ids);
        Report($"{fixture} {type} decode vs one pass", full, decode, V);
        // the one pass decompresses the latents through the exact fp32 copy; the decode's products of Q8_0 / Q4_0 halves
        // take int16 activations (measured mean KL <= 1.8e-6), of a Q4_K half (Q4_K_M's attn_v_b) int8 ones, as every
        // Q4_K product of such a file (6.1e-4 and 1.1e-2 on these random models, whose attention is sharp)
        double kl = Logits.MeanKl(full, decode, V), tol = type == GgufFileType.Q4_K_M ? 0.02 : 1e-5;
        Assert.True(kl <= tol, $"{fixture} {type}: decode vs one pass: mean KL {kl:G3} ({Logits.Describe(full, decode, V)})");
    }

    // int16 activations (Q8: one scale per token) are nearly exact; int8 ones (Q8K) round each value to 1/127 of its
    // block's largest: bounds relative to the output's rms
    private static void AssertNear(double[] exact, float[] got, ActivationFormat input, string what, float[] copy)
    {
        double rms = Math.Sqrt(exact.Sum(v => v * v) / exact.Length);
        double max = exact.Zip(got, (a, b) => Math.Abs(a - b)).Max(), copyMax = exact.Zip(copy, (a, b) => Math.Abs(a - b)).Max();
        double bound = (input == ActivationFormat.Q8K ? 0.03 : 1e-4) * rms;
        Assert.True(max <= bound, $"{what}: max abs diff {max:G3} from the exact product > {bound:G3} (rms {rms:G3})");
        Assert.True(copyMax <= 1e-5 * rms, $"{what}: prefill's copy of kv_b: max abs diff {copyMax:G3} from the exact product (rms {rms:G3})");
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
