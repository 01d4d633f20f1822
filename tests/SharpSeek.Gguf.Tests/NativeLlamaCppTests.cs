// Today's llama.cpp (native build, llama.cpp de3ff81, through llama-logits) loads every GGUF file `convert` writes and
// agrees with SharpSeek on it: the Hugging Face fixtures (V2-lite and V3 shapes, with and without an MTP layer, YaRN,
// FP8 source) at every type `convert` offers, and synthetic models whose rows are multiples of 256 so that Q4_K_M
// really holds Q4_K and Q6_K tensors (the fixtures' 64-wide rows fall back to Q8_0). Skipped when llama.cpp is absent.
// Tolerances as in LlamaCppInteropTests: llama.cpp rounds activations to BF16 for BF16 weights and quantizes them to
// q8_0 / q8_K for the quantized types, SharpSeek keeps them in fp32 for the quantized dot products of decode.
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tests;
using Xunit.Abstractions;

namespace SharpSeek.Gguf.Tests;

public sealed class NativeLlamaCppTests(ConvertedFixtures files, ITestOutputHelper log) : IClassFixture<ConvertedFixtures>
{
    public static IEnumerable<object[]> Folders() => Fixtures.HfFolders();

    public static IEnumerable<object[]> FoldersAndTypes() =>
        from f in Fixtures.HfFolders()
        from t in new[] { GgufFileType.BF16, GgufFileType.Q8_0, GgufFileType.Q4_K_M, GgufFileType.Q4_0 }
        select new object[] { f[0], t };

    public static IEnumerable<object[]> SyntheticAndTypes() =>
        from s in new[] { "v3-mtp-256", "v2-lite-tied-256" }
        from t in new[] { GgufFileType.BF16, GgufFileType.Q8_0, GgufFileType.Q4_K_M }
        select new object[] { s, t };

    private static int Vocab(string fixture) => ModelConfig.Load(Fixtures.Hf(fixture)).VocabSize;

    [LlamaCppTheory]
    [MemberData(nameof(Folders))]
    public void Native_llama_cpp_reproduces_the_reference_from_our_f32_gguf(string fixture)
    {
        int V = Vocab(fixture);
        (int[] ids, float[] reference) = FixtureModels.Reference(fixture, V);
        float[] llama = NativeLlamaCpp.Logits(files.Gguf(fixture, GgufFileType.F32), ids, V);
        log.WriteLine($"{fixture} F32: llama.cpp vs HF reference: {Logits.Describe(reference, llama, V)}");
        Numerics.AssertClose(reference, llama, 1e-4, $"{fixture}: native llama.cpp on the f32 GGUF vs the HF reference");
    }

    [LlamaCppTheory]
    [MemberData(nameof(FoldersAndTypes))]
    public void Native_llama_cpp_and_SharpSeek_agree_on_the_same_gguf(string fixture, GgufFileType type)
    {
        int V = Vocab(fixture);
        (int[] ids, _) = FixtureModels.Reference(fixture, V);
        string gguf = files.Gguf(fixture, type);
        AssertAgree($"{fixture} {type}", gguf, ids, V, type);
    }

    [LlamaCppTheory]
    [MemberData(nameof(SyntheticAndTypes))]
    public void Native_llama_cpp_and_SharpSeek_agree_on_synthetic_models_with_k_quant_rows(string shape, GgufFileType type)
    {
        using var dir = new TempDir();
        ModelConfig c = Synthetic(shape);
        string model = Path.Combine(dir.Path, shape);
        SyntheticModel.Write(c, model, seed: 3);
        File.WriteAllText(Path.Combine(model, "tokenizer.json"), FixtureModels.ByteLevelTokenizerJson());
        int[] ids = Enumerable.Range(0, 24).Select(i => (i * 97 + 11) % c.VocabSize).ToArray();
        string gguf = dir.File($"{shape}-{type}.gguf");
        using (ModelWeights w = WeightLoader.Load(model))
        {
            GgufExport.Write(w, gguf, type, Path.Combine(model, "tokenizer.json"));
            if (type == GgufFileType.BF16)
            {
                // the weights are bf16 already: the file holds them exactly, so llama.cpp must reproduce the checkpoint
                float[] checkpoint = new Transformer(w).Logits(ids);
                float[] llama = NativeLlamaCpp.Logits(gguf, ids, c.VocabSize);
                log.WriteLine($"{shape} BF16: llama.cpp vs SharpSeek on the bf16 checkpoint: {Logits.Describe(checkpoint, llama, c.VocabSize)}");
                double kl = Logits.MeanKl(checkpoint, llama, c.VocabSize);
                Assert.True(kl <= 1e-4, $"{shape}: native llama.cpp on {Path.GetFileName(gguf)} vs SharpSeek on the checkpoint: mean KL {kl:G3} ({Logits.Describe(checkpoint, llama, c.VocabSize)})");
            }
        }
        if (type == GgufFileType.Q4_K_M)
        {
            using var f = SharpSeek.Formats.Gguf.GgufFile.Open(gguf);
            var types = f.Tensors.GroupBy(t => t.Type).ToDictionary(g => g.Key, g => g.Count());
            log.WriteLine($"{shape} Q4_K_M tensor types: {string.Join(", ", types.Select(kv => $"{kv.Key} x{kv.Value}"))}");
            Assert.True(types.ContainsKey(SharpSeek.Formats.Gguf.GgmlType.Q4_K) && types.ContainsKey(SharpSeek.Formats.Gguf.GgmlType.Q6_K),
                $"{shape}: the Q4_K_M file should hold Q4_K and Q6_K tensors");
        }
        AssertAgree($"{shape} {type}", gguf, ids, c.VocabSize, type, minMargin: 0.05f);
        // and the decode path (absorbed attention, which reads quantized attn_k_b / attn_v_b as stored)
        float[] native = NativeLlamaCpp.Logits(gguf, ids, c.VocabSize);
        float[] decode;
        using (ModelWeights g = WeightLoader.Load(gguf))
            decode = FixtureModels.SharpSeekDecodeLogits(g, ids);
        log.WriteLine($"{shape} {type} decode: llama.cpp vs SharpSeek: {Logits.Describe(native, decode, c.VocabSize)}");
        double decodeKl = Logits.MeanKl(native, decode, c.VocabSize), tol = type == GgufFileType.BF16 ? 1e-4 : 0.02;
        Assert.True(decodeKl <= tol, $"{shape} {type}: SharpSeek's decode vs native llama.cpp: mean KL {decodeKl:G3} > {tol:G3} ({Logits.Describe(native, decode, c.VocabSize)})");
    }

    public static IEnumerable<object[]> LlamaQuantizeTypes() =>
        from s in new[] { "v3-mtp-256", "v2-lite-tied-256" }
        from t in new[] { "Q4_K_M", "Q5_K_M", "Q3_K_M", "Q2_K", "IQ4_XS", "IQ4_NL", "Q5_0", "Q4_1", "Q5_1" }
        select new object[] { s, t };

    [LlamaQuantizeTheory]
    [MemberData(nameof(LlamaQuantizeTypes))]
    public void Files_quantized_by_llama_cpp_itself_load_and_agree(string shape, string type)
    {
        // llama-quantize's own choices (a Q4_K_M file holds attn_k_b, 32-value rows, as Q5_0), not our converter's
        using var dir = new TempDir();
        ModelConfig c = Synthetic(shape);
        string model = Path.Combine(dir.Path, shape), bf16 = dir.File($"{shape}-bf16.gguf"), gguf = dir.File($"{shape}-{type}.gguf");
        SyntheticModel.Write(c, model, seed: 11);
        File.WriteAllText(Path.Combine(model, "tokenizer.json"), FixtureModels.ByteLevelTokenizerJson());
        using (ModelWeights w = WeightLoader.Load(model))
            GgufExport.Write(w, bf16, GgufFileType.BF16, Path.Combine(model, "tokenizer.json"));
        NativeLlamaCpp.Quantize(bf16, gguf, type);
        using (var f = SharpSeek.Formats.Gguf.GgufFile.Open(gguf))
            log.WriteLine($"{shape} {type} (llama-quantize): {string.Join(", ", f.Tensors.GroupBy(t => t.Type).Select(g => $"{g.Key} x{g.Count()}"))}");
        int[] ids = Enumerable.Range(0, 24).Select(i => (i * 97 + 11) % c.VocabSize).ToArray();
        // near-ties flip under either engine's activation rounding: the top token is compared where llama.cpp's top two
        // logits differ by 0.1 or more (these random models' logits are nearly flat; Q2_K's weights are the coarsest)
        AssertAgree($"{shape} {type} (llama-quantize)", gguf, ids, c.VocabSize, GgufFileType.Q8_0, minMargin: 0.1f);
        float[] native = NativeLlamaCpp.Logits(gguf, ids, c.VocabSize), decode;
        using (ModelWeights g = WeightLoader.Load(gguf))
            decode = FixtureModels.SharpSeekDecodeLogits(g, ids);
        double kl = Logits.MeanKl(native, decode, c.VocabSize);
        log.WriteLine($"{shape} {type} (llama-quantize) decode: llama.cpp vs SharpSeek: {Logits.Describe(native, decode, c.VocabSize)}");
        Assert.True(kl <= 0.02, $"{shape} {type}: SharpSeek's decode vs native llama.cpp: mean KL {kl:G3} ({Logits.Describe(native, decode, c.VocabSize)})");
    }

    [LlamaCppTheory]
    [InlineData(GgufFileType.BF16)]
    [InlineData(GgufFileType.Q8_0)]
    public void Native_llama_cpp_runs_the_default_model_converted_with_its_trained_tokenizer(GgufFileType type)
    {
        // the real vocabulary (BPE merges, special tokens, chat template) through llama.cpp's vocabulary loader
        string dir = Fixtures.ShippedModel("sharpseek-mini");
        using var tmp = new TempDir();
        string gguf = tmp.File($"sharpseek-mini-{type}.gguf");
        using (ModelWeights w = WeightLoader.Load(dir))
            GgufExport.Write(w, gguf, type, Path.Combine(dir, "tokenizer.json"));
        int[] ids = SharpSeek.Tokenizer.BpeTokenizer.LoadFromDirectory(dir).Encode("It is a truth universally acknowledged, that a single man", addSpecialTokens: true);
        AssertAgree($"sharpseek-mini {type}", gguf, ids, ModelConfig.Load(dir).VocabSize, type);
    }

    // minMargin: the top token is compared only where llama.cpp's top two logits differ by that much (the synthetic
    // models' logits are nearly flat: near-ties flip under activation quantization while the distributions agree)
    private void AssertAgree(string what, string gguf, int[] ids, int V, GgufFileType type, float minMargin = 0)
    {
        float[] llama = NativeLlamaCpp.Logits(gguf, ids, V);
        float[] ours = FixtureModels.SharpSeekLogits(gguf, ids);
        log.WriteLine($"{what}: llama.cpp vs SharpSeek: {Logits.Describe(llama, ours, V)}");
        double tol = type == GgufFileType.BF16 ? 1e-4 : 0.02;
        double kl = Logits.MeanKl(llama, ours, V);
        Assert.True(kl <= tol, $"{what}: SharpSeek vs native llama.cpp on {Path.GetFileName(gguf)}: mean KL {kl:G3} > {tol:G3} ({Logits.Describe(llama, ours, V)})");
        (double agree, int compared) = ArgmaxAgreement(llama, ours, V, minMargin);
        log.WriteLine($"{what}: top token agrees at {agree:P1} of {compared} positions (top-2 margin >= {minMargin})");
        Assert.True(compared > 0 && agree >= 0.8, $"{what}: top tokens differ too often: {agree:P1} of {compared} positions ({Logits.Describe(llama, ours, V)})");
    }

    private static (double Agreement, int Compared) ArgmaxAgreement(float[] want, float[] got, int V, float minMargin)
    {
        int compared = 0, same = 0;
        for (int t = 0; t < want.Length / V; t++)
        {
            ReadOnlySpan<float> w = want.AsSpan(t * V, V), g = got.AsSpan(t * V, V);
            int best = 0, second = -1;
            for (int i = 1; i < V; i++)
            {
                if (w[i] > w[best])
                {
                    second = best;
                    best = i;
                }
                else if (second < 0 || w[i] > w[second])
                {
                    second = i;
                }
            }
            if (w[best] - w[second] < minMargin)
                continue;
            compared++;
            int top = 0;
            for (int i = 1; i < V; i++)
            {
                if (g[i] > g[top])
                    top = i;
            }
            if (top == best)
                same++;
        }
        return (compared == 0 ? 0 : (double)same / compared, compared);
    }

    // rows of 256 (hidden, q_lora, kv_lora, expert width) so Q4_K_M keeps Q4_K and Q6_K; MTP written to the checkpoint
    // (dropped from the GGUF as llama.cpp's converter does); the V2-lite shape with tied embeddings (no output.weight)
    /// <summary>Fixture shapes widened so that rows are multiples of 256 (Q4_K_M then holds Q4_K and Q6_K tensors).</summary>
    internal static ModelConfig Synthetic(string shape) => shape switch
    {
        "v3-mtp-256" => ModelConfig.Load(Fixtures.Hf("v3-tiny")) with
        {
            HiddenSize = 256, IntermediateSize = 512, MoeIntermediateSize = 256, QLoraRank = 256, KvLoraRank = 256,
            QkNopeHeadDim = 32, QkRopeHeadDim = 32, VHeadDim = 32, NumAttentionHeads = 4, NumNextnPredictLayers = 1,
        },
        "v2-lite-tied-256" => ModelConfig.Load(Fixtures.Hf("v2-lite-tiny")) with
        {
            HiddenSize = 256, IntermediateSize = 512, MoeIntermediateSize = 256, KvLoraRank = 256,
            QkNopeHeadDim = 32, QkRopeHeadDim = 32, VHeadDim = 32, NumAttentionHeads = 4, TieWordEmbeddings = true,
        },
        _ => throw new ArgumentException(shape),
    };
}
