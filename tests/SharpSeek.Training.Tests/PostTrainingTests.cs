// SFT and GRPO: masks and packing, masked tokens without gradient, exact resume of both loops; the GRPO objective's
// derivative against finite differences (per token and through a tiny model), advantage normalisation, the k3 KL
// estimator; a tiny GRPO run whose reward rises on a trivially learnable task; config errors that name the field.
using System.Text.Json;
using SharpSeek.Model;
using SharpSeek.Tests;
using SharpSeek.Tokenizer;
using SharpSeek.Training.Tasks;
using Xunit.Abstractions;

namespace SharpSeek.Training.Tests;

public sealed class PostTrainingTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sharpseek-post-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static string MiniModel => Fixtures.ShippedModel("sharpseek-mini");

    // dense V3-style layers (no routing), the real tokenizer's vocabulary
    private static ModelConfig Tiny(int vocab = 4096, int layers = 2, int firstDense = 2, int positions = 256) => ModelConfig.Parse($$"""
        {
          "model_type": "deepseek_v3", "vocab_size": {{vocab}}, "hidden_size": 24, "intermediate_size": 40, "moe_intermediate_size": 12,
          "num_hidden_layers": {{layers}}, "num_attention_heads": 2, "n_shared_experts": 1, "n_routed_experts": 4, "num_experts_per_tok": 2,
          "n_group": 1, "topk_group": 1, "routed_scaling_factor": 2.5, "norm_topk_prob": true, "scoring_func": "sigmoid",
          "topk_method": "noaux_tc", "first_k_dense_replace": {{firstDense}}, "q_lora_rank": 16, "kv_lora_rank": 12, "qk_nope_head_dim": 8,
          "qk_rope_head_dim": 4, "v_head_dim": 6, "max_position_embeddings": {{positions}}, "rms_norm_eps": 1e-6, "rope_theta": 10000,
          "num_nextn_predict_layers": 0, "bos_token_id": 0, "eos_token_id": 1
        }
        """);

    // a random tiny model; with evenOdd, every lm_head row gets ±0.3·u (+ for even ids, − for odd ids, u a unit vector),
    // so "sample even ids" is one direction of the hidden state away: the trivially learnable task of the GRPO smoke test
    private string ModelDir(string name, ulong seed = 5, bool evenOdd = false)
    {
        string dir = Path.Combine(_dir, name);
        ModelParameters p = ModelParameters.Random(Tiny(), seed, 0.1);
        if (evenOdd)
        {
            Parameter head = p.Trainable.Single(t => t.Name == "lm_head.weight");
            int H = p.Config.HiddenSize;
            var u = new double[H];
            var rng = new Rng(seed + 1);
            for (int i = 0; i < H; i++)
                u[i] = rng.NextNormal();
            double n = Math.Sqrt(u.Sum(x => x * x));
            Span<float> w = head.Values;
            for (int v = 0; v < p.Config.VocabSize; v++)
            {
                for (int i = 0; i < H; i++)
                    w[v * H + i] += (float)((v % 2 == 0 ? 0.3 : -0.3) * u[i] / n);
            }
        }
        TrainCheckpoint.WriteModel(dir, p, MiniModel);
        return dir;
    }

    // checkpoint averaging: every tensor (router biases included) is the element-wise mean; another architecture is
    // refused naming its directory
    [Fact]
    public void AverageIsTheElementWiseMeanOfCheckpoints()
    {
        Directory.CreateDirectory(_dir);
        string[] dirs = [Path.Combine(_dir, "avg-a"), Path.Combine(_dir, "avg-b"), Path.Combine(_dir, "avg-c")];
        var models = new ModelParameters[3];
        for (int k = 0; k < 3; k++)
        {
            models[k] = ModelParameters.Random(Tiny(layers: 3, firstDense: 1), (ulong)(11 + k), 0.1);
            foreach (float[] b in models[k].RouterBiases)
                b.AsSpan().Fill(0.01f * (k + 1)); // routers' selection biases move in training too
            TrainCheckpoint.WriteModel(dirs[k], models[k], MiniModel);
        }
        ModelParameters mean = ModelParameters.Average(dirs);
        double maxDiff = 0;
        for (int i = 0; i < mean.Trainable.Count; i++)
        {
            Span<float> m = mean.Trainable[i].Values;
            for (int j = 0; j < m.Length; j++)
            {
                double want = ((double)models[0].Trainable[i].Values[j] + models[1].Trainable[i].Values[j] + models[2].Trainable[i].Values[j]) / 3;
                maxDiff = Math.Max(maxDiff, Math.Abs(m[j] - want));
            }
        }
        Assert.True(maxDiff < 1e-7, $"max abs diff {maxDiff}");
        Assert.NotEmpty(mean.RouterBiases);
        Assert.All(mean.RouterBiases, b => Assert.All(b, x => Assert.Equal(0.02f, x, 1e-7f)));
        string other = Path.Combine(_dir, "avg-other");
        TrainCheckpoint.WriteModel(other, ModelParameters.Random(Tiny(vocab: 2048, layers: 3, firstDense: 1), 1, 0.1), MiniModel);
        var e = Assert.Throws<InvalidDataException>(() => ModelParameters.Average([dirs[0], other]));
        Assert.Contains(other, e.Message, StringComparison.Ordinal);
    }

    private string TaskFile(int count)
    {
        string path = Path.Combine(_dir, $"tasks-{count}.jsonl");
        TaskSet.Write(path, TaskSet.Generate("arith", "train", count, 1).Take(count));
        return path;
    }

    // ---- SFT ----

    private static List<SftExample> Examples(BpeTokenizer tok)
    {
        ChatTemplate t = R1Format.Template(tok);
        return
        [
            new(R1Format.EncodePrompt(tok, t, "What is 1 + 2 + 3?"), R1Format.EncodeCompletion(tok, t, "<think>\n1 + 2 = 3\n3 + 3 = 6\n</think>\n\n\\boxed{6}")),
            new(R1Format.EncodePrompt(tok, t, "What is 2 * 3 - 1?"), R1Format.EncodeCompletion(tok, t, "<think>\n2 * 3 = 6\n6 - 1 = 5\n</think>\n\n\\boxed{5}")),
            new(R1Format.EncodePrompt(tok, t, "Hi"), R1Format.EncodeCompletion(tok, t, "<think>\nhello\n</think>\n\nHello!")),
        ];
    }

    [Fact]
    public void SftRowsPackWholeExamplesAndMaskEverythingButReplies()
    {
        BpeTokenizer tok = BpeTokenizer.LoadFromDirectory(MiniModel);
        List<SftExample> ex = Examples(tok);
        // the prompt ends with the R1 generation prompt, the completion with EOS and without the opening <think>
        Assert.EndsWith("<｜Assistant｜><think>\n", tok.Decode(ex[0].Prompt), StringComparison.Ordinal);
        Assert.Equal(tok.EosId, ex[0].Completion[^1]);
        Assert.StartsWith("1 + 2 = 3", tok.Decode(ex[0].Completion), StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => R1Format.EncodeCompletion(tok, R1Format.Template(tok), "no think block"));

        int T = ex.Max(e => e.Length) + 10; // room for one example and part of another: one example per row
        var data = new SftData(ex, batchSize: 2, sequenceLength: T, seed: 3);
        Assert.Equal(2, data.BatchesPerEpoch); // 3 rows, batches of 2
        var seen = new List<string>();
        var inputs = new int[2 * T];
        var targets = new int[2 * T];
        for (int batch = 0; batch < 2; batch++)
        {
            data.NextBatch(inputs, targets);
            for (int b = 0; b < 2; b++)
            {
                int[] row = inputs.AsSpan(b * T, T).ToArray(), tg = targets.AsSpan(b * T, T).ToArray();
                if (tg.All(x => x == -1))
                {
                    seen.Add("(empty)");
                    continue;
                }
                SftExample e = ex.Single(x => row.AsSpan(0, x.Prompt.Length).SequenceEqual(x.Prompt));
                seen.Add(tok.Decode(e.Prompt));
                for (int t = 0; t < T; t++)
                {
                    // target t is token t+1 of the example when that token is in the completion, else −1 (prompt, padding)
                    int next = t + 1;
                    int want = next >= e.Prompt.Length && next < e.Length ? e.Completion[next - e.Prompt.Length] : -1;
                    Assert.Equal(want, tg[t]);
                }
            }
        }
        Assert.Equal(3, seen.Count(s => s != "(empty)"));
        Assert.Equal(3, seen.Where(s => s != "(empty)").Distinct().Count()); // each example once per epoch

        // rows long enough for all three: packed whole, in one row, masks per example
        var packed = new SftData(ex, batchSize: 1, sequenceLength: ex.Sum(e => e.Length) + 3, seed: 3);
        Assert.Equal(1, packed.BatchesPerEpoch);
        int T2 = ex.Sum(e => e.Length) + 3;
        var in2 = new int[T2];
        var tg2 = new int[T2];
        packed.NextBatch(in2, tg2);
        Assert.Equal(ex.Sum(e => e.Completion.Length), tg2.Count(x => x >= 0));
        Assert.Equal(3, tg2.Count(x => x == tok.EosId));
    }

    [Fact]
    public void MaskedAndPaddingTokensGetNoGradient()
    {
        BpeTokenizer tok = BpeTokenizer.LoadFromDirectory(MiniModel);
        List<SftExample> ex = Examples(tok);
        int T = ex.Max(e => e.Length) + 12, B = 2;
        var data = new SftData(ex, B, T, seed: 1);
        var inputs = new int[B * T];
        var targets = new int[B * T];
        data.NextBatch(inputs, targets);
        ModelParameters p = ModelParameters.Random(Tiny(), 3, 0.2);
        var model = new TrainingModel(p, new TrainingModelOptions { BatchSize = B, SequenceLength = T });
        float[][] Grads(int[] ids)
        {
            p.ZeroGrad();
            model.ForwardBackward(ids, targets);
            return p.Trainable.Select(t => t.Grad.ToArray()).ToArray();
        }
        float[][] g0 = Grads(inputs);
        // padding positions (after the last target of a row) hold an id no example uses: its embedding row gets no gradient
        const int padId = 4000;
        var padded = (int[])inputs.Clone();
        for (int b = 0; b < B; b++)
        {
            int last = Array.FindLastIndex(targets, b * T + T - 1, T, x => x >= 0);
            for (int t = last + 1; t < (b + 1) * T; t++)
                padded[t] = padId;
        }
        Assert.Contains(padId, padded);
        float[][] g1 = Grads(padded);
        for (int k = 0; k < g0.Length; k++)
            Assert.Equal(g0[k], g1[k]); // whatever the padding holds, the gradient is the same, bit for bit
        Parameter embed = p.Trainable.Single(t => t.Name == "model.embed_tokens.weight");
        int H = p.Config.HiddenSize;
        Assert.All(embed.Grad.Slice(padId * H, H).ToArray(), v => Assert.Equal(0f, v));
    }

    private (TrainOptions, SftData) SftSetup(string run)
    {
        string model = ModelDir("sft-init");
        string tasks = TaskFile(12);
        string json = $$"""
            {
              "model": { "init_from": {{JsonSerializer.Serialize(model)}} },
              "data": { "train": {{JsonSerializer.Serialize(tasks)}} },
              "batch_size": 2, "seq_len": 160, "epochs": 2, "lr": 3e-3, "schedule": "cosine", "warmup_steps": 1,
              "checkpoint_dir": {{JsonSerializer.Serialize(Path.Combine(_dir, run))}}, "checkpoint_interval": 3, "threads": 2, "seed": 11
            }
            """;
        SftOptions s = SftOptions.Parse(json, _dir);
        return s.Prepare();
    }

    [Fact]
    public void SftResumeIsExactAndLossFalls()
    {
        Directory.CreateDirectory(_dir);
        double[] full;
        float[][] weights;
        (TrainOptions o, SftData d) = SftSetup("full");
        Assert.True(o.Steps >= 6, $"{o.Steps} steps");
        using (Trainer t = Trainer.Create(o, d))
        {
            t.Run();
            full = t.History.Select(r => r.Loss).ToArray();
            weights = t.Parameters.Trainable.Select(x => x.Values.ToArray()).ToArray();
        }
        Assert.True(full[^1] < full[0], $"loss {full[0]} -> {full[^1]}");
        (o, d) = SftSetup("split");
        using (Trainer t = Trainer.Create(o, d))
            t.Run(maxSteps: 4); // checkpoint after 3; step 4 is lost
        (o, d) = SftSetup("split");
        using (Trainer t = Trainer.Create(o, d))
        {
            Assert.Equal(3, t.Step);
            t.Run();
            Assert.Equal(full, t.History.Select(r => r.Loss).ToArray());
            for (int i = 0; i < weights.Length; i++)
                Assert.Equal(weights[i], t.Parameters.Trainable[i].Values.ToArray());
        }
        // checkpoints carry the R1 chat template
        string ckpt = TrainCheckpoint.Latest(o.CheckpointDir!)!;
        Assert.Equal(ChatTemplateKind.DeepSeekR1, ChatTemplate.DetectKind(TokenizerConfig.Load(Path.Combine(ckpt, "tokenizer_config.json")).ChatTemplate));
    }

    [Fact]
    public void SftAndGrpoConfigErrorsNameTheField()
    {
        Directory.CreateDirectory(_dir);
        string model = JsonSerializer.Serialize(ModelDir("cfg"));
        string tasks = JsonSerializer.Serialize(TaskFile(3));
        void Bad(Func<string, string, object> parse, string json, string field)
        {
            var e = Assert.Throws<InvalidDataException>(() => parse(json, _dir));
            Assert.Contains($"x.json: field '{field}'", e.Message, StringComparison.Ordinal);
        }
        object Sft(string j, string d) => SftOptions.Parse(j, d, "x.json");
        object Grpo(string j, string d) => GrpoOptions.Parse(j, d, "x.json");
        Bad(Sft, $$"""{ "model": { "init_from": {{model}} } }""", "data");
        Bad(Sft, $$"""{ "model": { "init_from": {{model}} }, "data": { "train": 5 } }""", "data.train");
        Bad(Sft, $$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{tasks}}, "shards": [] } }""", "data.shards");
        Bad(Sft, $$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{tasks}}, "template": "v9" } }""", "data.template");
        Bad(Sft, $$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{tasks}} }, "epochs": 2, "steps": 5 }""", "epochs");
        Bad(Sft, $$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{tasks}} }, "epochz": 2 }""", "epochz");
        Bad(Grpo, $$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{tasks}} }, "mtp_lambda": 0.3 }""", "mtp_lambda");
        Bad(Grpo, $$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{tasks}} }, "group_size": 1 }""", "group_size");
        Bad(Grpo, $$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{tasks}} }, "beta": -1 }""", "beta");
        Bad(Grpo, $$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{tasks}} }, "reward": { "speed": 1 } }""", "reward.speed");
        Bad(Grpo, $$"""{ "model": { "init_from": {{model}} }, "data": { } }""", "data.train");
        Bad(Grpo, """{ "model": { "init_from": "nowhere" }, "data": { "train": "t.jsonl" } }""", "model.init_from");
        // a key given twice, or an unpaired surrogate escape in a key or a string, is refused when the file is read (they
        // threw internal ArgumentException / InvalidOperationException on first use)
        foreach (Func<string, string, object> parse in new Func<string, string, object>[] { Sft, Grpo })
        {
            foreach (string extra in new[] { "\"lr\": 1e-3, \"lr\": 2e-3", "\"schedule\": \"con\\ud800stant\"", "\"se\\udc00ed\": 7" })
            {
                var e = Assert.Throws<InvalidDataException>(() => parse($$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{tasks}} }, {{extra}} }""", _dir));
                Assert.StartsWith("x.json: not valid JSON: ", e.Message, StringComparison.Ordinal);
            }
        }
        // a bad line of the SFT data names file, line and field
        string bad = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllText(bad, "{\"prompt\": \"What is 1 + 2 + 3?\", \"response\": \"<think>\\nx\\n</think>\\n\\n\\\\boxed{6}\"}\n{\"prompt\": \"p\", \"response\": \"no think\"}\n");
        SftOptions s = SftOptions.Parse($$"""{ "model": { "init_from": {{model}} }, "data": { "train": {{JsonSerializer.Serialize(bad)}} } }""", _dir);
        var err = Assert.Throws<InvalidDataException>(() => s.Prepare());
        Assert.StartsWith($"{bad}:2: field 'response'", err.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GenerationStopsAtTheRecordedTrainingLength()
    {
        string dir = ModelDir("ctx");
        Assert.Null(Inference.ModelSession.ReadTrainedLength(dir));
        TrainCheckpoint.RecordLength(dir, 40);
        using var session = Inference.ModelSession.Open(dir, new Inference.ModelSessionOptions { Tokenizer = Inference.TokenizerLoad.Required });
        Assert.Equal(40, session.TrainedLength);
        Assert.Equal(40, session.ContextLength);
        Inference.Generator g = session.CreateGenerator();
        int[] prompt = TinyModels.Ids(30, 4096, 2);
        Inference.GenerationResult r = g.Generate(prompt, new Inference.GenerationOptions { MaxTokens = 100, IgnoreEos = true, Sampling = Inference.SamplingOptions.Greedy });
        Assert.Equal(Inference.FinishReason.Length, r.FinishReason);
        Assert.Equal(11, r.Tokens.Count); // positions 30..39 computed; the last token is the prediction of position 39
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), "{\"max_length\": \"long\"}");
        var e = Assert.Throws<InvalidDataException>(() => Inference.ModelSession.ReadTrainedLength(dir));
        Assert.Contains("field 'max_length'", e.Message, StringComparison.Ordinal);
    }

    // ---- GRPO objective ----

    [Fact]
    public void TokenLossDerivativeMatchesFiniteDifferences()
    {
        int clippedSeen = 0;
        foreach (double shift in new[] { -0.6, -0.25, -0.1, 0, 0.05, 0.15, 0.3, 0.7 })   // lp − old: ratios on both sides of the clip range
        foreach (double adv in new[] { -1.3, -0.2, 0.4, 2.0 })
        foreach (double beta in new[] { 0, 0.04, 1.0 })
        {
            double lp = -1.7, old = lp - shift, refLp = -1.2, w = 0.37, eps = 0.2, h = 1e-6;
            double loss = GrpoMath.TokenLoss(lp, old, refLp, adv, w, eps, beta, out double d, out bool clipped);
            double fd = (GrpoMath.TokenLoss(lp + h, old, refLp, adv, w, eps, beta, out _, out _)
                         - GrpoMath.TokenLoss(lp - h, old, refLp, adv, w, eps, beta, out _, out _)) / (2 * h);
            Assert.True(Math.Abs(fd - d) <= 1e-7 + 1e-6 * Math.Abs(d), $"shift {shift} adv {adv} beta {beta}: fd {fd} analytic {d}");
            double ratio = Math.Exp(shift);
            Assert.Equal(adv > 0 ? ratio > 1 + eps : ratio < 1 - eps, clipped);
            double surrogate = Math.Min(ratio * adv, Math.Clamp(ratio, 1 - eps, 1 + eps) * adv);
            Assert.Equal(-w * (surrogate - beta * GrpoMath.KlK3(lp, refLp)), loss, 12);
            clippedSeen += clipped ? 1 : 0;
        }
        Assert.True(clippedSeen > 0);
        // ratio 1 (the first pass): the gradient is −w·A plus the KL term
        GrpoMath.TokenLoss(-2, -2, -2, 1.5, 0.1, 0.2, 0.5, out double g1, out _);
        Assert.Equal(-0.15, g1, 12);
    }

    [Fact]
    public void AdvantagesAreNormalisedPerGroup()
    {
        double[] r = [1, 0, 0, 1, 0.1, 0.1, 0.1, 0.1, 3, 1, 2, 0];
        var a = new double[r.Length];
        GrpoMath.Advantages(r, 4, a);
        for (int g = 0; g < 3; g++)
        {
            double[] x = a.Skip(4 * g).Take(4).ToArray();
            Assert.Equal(0, x.Sum(), 12);
            double std = Math.Sqrt(r.Skip(4 * g).Take(4).Select(v => (v - r.Skip(4 * g).Take(4).Average()) * (v - r.Skip(4 * g).Take(4).Average())).Average());
            if (std == 0)
                Assert.All(x, v => Assert.Equal(0, v)); // equal rewards: no signal
            else
                Assert.Equal(std / (std + GrpoMath.Eps), Math.Sqrt(x.Select(v => v * v).Average()), 9);
        }
        Assert.Equal([1, -1, -1, 1], a.Take(4).Select(v => Math.Round(v, 3)));
        Assert.True(a[8] > a[10] && a[10] > a[9] && a[9] > a[11]); // order kept
        Assert.Throws<ArgumentException>(() => GrpoMath.Advantages(r, 5, a));
    }

    [Fact]
    public void K3EstimatesTheKlDivergence()
    {
        // E_{x~π}[k3(x)] = KL(π || π_ref) exactly for a categorical π: Σ π (ρ − log ρ − 1) with ρ = π_ref/π, Σ π ρ = 1
        double[] pi = [0.5, 0.2, 0.2, 0.1], pref = [0.25, 0.25, 0.4, 0.1];
        double expected = 0, kl = 0;
        for (int i = 0; i < pi.Length; i++)
        {
            double k3 = GrpoMath.KlK3(Math.Log(pi[i]), Math.Log(pref[i]));
            Assert.True(k3 >= 0);
            expected += pi[i] * k3;
            kl += pi[i] * Math.Log(pi[i] / pref[i]);
        }
        Assert.Equal(kl, expected, 12);
        Assert.Equal(0, GrpoMath.KlK3(-1.3, -1.3));
    }

    [Fact]
    public void GrpoLossGradientThroughTheModelMatchesFiniteDifferences()
    {
        ModelConfig c = Tiny(vocab: 97, layers: 2, firstDense: 2, positions: 64);
        ModelParameters p = ModelParameters.Random(c, seed: 7, std: 0.2);
        TinyModels.Perturb(p, 11);
        int B = 2, T = 11;
        var model = new TrainingModel(p, new TrainingModelOptions { BatchSize = B, SequenceLength = T });
        int[] ids = TinyModels.Ids(B * (T + 1), c.VocabSize, 3);
        var inputs = new int[B * T];
        var targets = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t < T; t++)
            {
                inputs[b * T + t] = ids[b * (T + 1) + t];
                targets[b * T + t] = t >= 3 + b && t < T - b ? ids[b * (T + 1) + t + 1] : -1; // prompt and padding masked
            }
        }
        var lp0 = new float[B * T];
        model.LogProbs(inputs, targets, lp0);
        var rng = new Rng(4);
        var old = lp0.Select(v => v + (float)(rng.NextNormal() * 0.3)).ToArray();  // ratios around 1, some clipped
        var refLp = lp0.Select(v => v + (float)(rng.NextNormal() * 0.5)).ToArray();
        double[] adv = [1.3, -0.8];
        const double eps = 0.2, beta = 0.3;
        double W(int row) => 1.0 / 6;
        double Loss(float[] lp)
        {
            double s = 0;
            for (int r = 0; r < lp.Length; r++)
            {
                if (targets[r] >= 0)
                    s += GrpoMath.TokenLoss(lp[r], old[r], refLp[r], adv[r / T], W(r), eps, beta, out _, out _);
            }
            return s;
        }
        p.ZeroGrad();
        var lp1 = new float[B * T];
        int calls = 0;
        double loss = model.ForwardBackward(inputs, targets, (int r, float lp, out float d) =>
        {
            Interlocked.Increment(ref calls);
            double l = GrpoMath.TokenLoss(lp, old[r], refLp[r], adv[r / T], W(r), eps, beta, out double dd, out _);
            d = (float)dd;
            return l;
        }, lp1);
        Assert.Equal(targets.Count(x => x >= 0), calls); // the objective sees exactly the unmasked tokens
        Assert.Equal(lp0, lp1);                          // the same log-probabilities as the no-gradient pass
        Assert.Equal(Loss(lp0), loss, 6);
        var rngv = new Rng(5);
        int checkedTensors = 0;
        foreach (Parameter prm in p.Trainable)
        {
            float[] g = prm.Grad.ToArray(), w0 = prm.Values.ToArray();
            double gn = Math.Sqrt(g.Sum(x => (double)x * x));
            if (gn == 0)
                continue;
            var v = new double[g.Length];
            double vn = 0;
            for (int i = 0; i < v.Length; i++)
            {
                v[i] = g[i] / gn + rngv.NextNormal() / Math.Sqrt(v.Length);
                vn += v[i] * v[i];
            }
            vn = Math.Sqrt(vn);
            double an = 0;
            for (int i = 0; i < v.Length; i++)
            {
                v[i] /= vn;
                an += g[i] * v[i];
            }
            const double h = 1e-3;
            double At(double s)
            {
                Span<float> x = prm.Values;
                for (int i = 0; i < x.Length; i++)
                    x[i] = (float)(w0[i] + s * v[i]);
                var lp = new float[B * T];
                model.LogProbs(inputs, targets, lp);
                w0.CopyTo(prm.Values);
                return Loss(lp);
            }
            double fd = (At(h) - At(-h)) / (2 * h);
            output.WriteLine($"{prm.Name}: analytic {an:G6} fd {fd:G6}");
            Assert.True(Math.Abs(fd - an) <= 2e-3 * Math.Abs(an) + 3e-4, $"{prm.Name}: analytic {an} vs finite differences {fd}");
            checkedTensors++;
        }
        Assert.True(checkedTensors >= p.Trainable.Count - 1, $"{checkedTensors} of {p.Trainable.Count} tensors checked");
    }

    // ---- GRPO runs ----

    private GrpoOptions GrpoConfig(string run, string model, string tasks, int steps, string extra = "", string? validation = null, double temperature = 1)
    {
        string data = validation is null ? "" : ", \"validation\": " + JsonSerializer.Serialize(validation);
        string json = $$"""
            {
              "model": { "init_from": {{JsonSerializer.Serialize(model)}} },
              "data": { "train": {{JsonSerializer.Serialize(tasks)}}{{data}} },
              "prompts_per_step": 2, "group_size": 8, "max_completion_tokens": 6, "temperature": {{temperature.ToString(System.Globalization.CultureInfo.InvariantCulture)}},
              "steps": {{steps}}, "lr": 1e-2, "schedule": "constant", "weight_decay": 0, "clip": 1.0,
              "threads": 2, "seed": 5, "micro_batch": 8, {{extra}}
              "checkpoint_dir": {{JsonSerializer.Serialize(Path.Combine(_dir, run))}}, "keep_checkpoints": 0
            }
            """;
        return GrpoOptions.Parse(json, _dir);
    }

    // a 4-step run of the GRPO config (run, model, tasks, extra, temperature), check called after every step; its log
    private GrpoStep[] RunChecked(string run, string model, string tasks, string extra, double temperature,
                                  Func<TaskExample, IReadOnlyList<int>, double> reward, Action<GrpoTrainer, GrpoStep> check)
    {
        using GrpoTrainer g = GrpoTrainer.Create(GrpoConfig(run, model, tasks, 4, extra, temperature: temperature), reward);
        g.Run(r => check(g, r));
        return g.History.ToArray();
    }

    // a run of o stopped after 3 steps (its checkpoint: step 2) and resumed logs what the uninterrupted run logged
    private static void AssertResumedRunReproduces<T>(GrpoOptions o, Func<TaskExample, IReadOnlyList<int>, double> reward, GrpoStep[] full, Func<GrpoStep, T> key)
    {
        using (GrpoTrainer g = GrpoTrainer.Create(o, reward))
            g.Run(maxSteps: 3);
        using (GrpoTrainer g = GrpoTrainer.Create(o, reward))
        {
            Assert.Equal(2, g.Step);
            g.Run();
            Assert.Equal(full.Select(key), g.History.Select(key));
        }
    }

    // the trivially learnable task: the fraction of sampled tokens with an even id
    private static double EvenTokens(TaskExample t, IReadOnlyList<int> tokens) => tokens.Count(x => x % 2 == 0) / (double)tokens.Count;
    private static double OddTokens(TaskExample t, IReadOnlyList<int> tokens) => 1 - EvenTokens(t, tokens);

    [Fact]
    public void GrpoRaisesTheRewardOnALearnableTask()
    {
        Directory.CreateDirectory(_dir);
        GrpoOptions o = GrpoConfig("learn", ModelDir("grpo-init", evenOdd: true), TaskFile(6), 12, "\"beta\": 0.02, \"log_jsonl\": " + JsonSerializer.Serialize(Path.Combine(_dir, "learn.jsonl")) + ",");
        using GrpoTrainer g = GrpoTrainer.Create(o, EvenTokens);
        g.Run();
        double first = g.History.Take(2).Average(r => r.Reward), last = g.History.TakeLast(3).Average(r => r.Reward);
        output.WriteLine(string.Join("\n", g.History.Select(r => GrpoTrainer.Describe(r, 12))));
        Assert.True(last > first + 0.2 && last > 0.85, $"reward {first:F3} -> {last:F3}");
        Assert.True(g.History[^1].Kl > 0, "the policy moved away from the reference");
        Assert.All(g.History, r => Assert.Equal(0, r.ClipFraction)); // one pass per step: ratio 1, nothing clipped
        Assert.All(g.History, r => Assert.True(r.SamplingTokensPerSecond > 0 && r.TrainingTokensPerSecond > 0 && r.CompletionLength > 0));
        GrpoTrainer.WriteLog(o.LogJsonl!, g.History);
        GrpoTrainer.WritePlots(Path.Combine(_dir, "learn.png"), g.History);
        string[] lines = File.ReadAllLines(o.LogJsonl!);
        Assert.Equal(12, lines.Length);
        JsonElement row = JsonDocument.Parse(lines[0]).RootElement;
        foreach (string key in new[] { "reward", "accuracy", "completion_length", "kl", "clip_fraction", "sampling_tokens_per_second", "training_tokens_per_second" })
            Assert.True(row.TryGetProperty(key, out _), key);
        Assert.True(new FileInfo(Path.Combine(_dir, "learn.png")).Length > 1000);
        Assert.True(new FileInfo(Path.Combine(_dir, "learn-length.png")).Length > 1000);
    }

    // greedy validation accuracy before the first step and every N steps (and after the last), logged only where
    // evaluated, without changing the training (the same rewards, losses and weights as a run without it)
    [Fact]
    public void GrpoValidatesEveryNStepsWithoutChangingTheRun()
    {
        Directory.CreateDirectory(_dir);
        string model = ModelDir("grpo-validate", evenOdd: true), tasks = TaskFile(5), val = TaskFile(3);
        GrpoStep[] plain;
        using (GrpoTrainer g = GrpoTrainer.Create(GrpoConfig("plain", model, tasks, 5), EvenTokens))
        {
            g.Run();
            plain = g.History.ToArray();
        }
        string log = Path.Combine(_dir, "validate.jsonl");
        string extra = "\"validation\": { \"every\": 2, \"limit\": 2 }, \"log_jsonl\": " + JsonSerializer.Serialize(log) + ",";
        GrpoOptions o = GrpoConfig("validate", model, tasks, 5, extra, val);
        using (GrpoTrainer g = GrpoTrainer.Create(o, EvenTokens))
        {
            var seen = new List<long>();
            g.Run(r => seen.Add(r.Step));
            Assert.Equal([0L, 1, 2, 3, 4, 5], seen);
            Assert.Equal([0L, 2, 4, 5], g.History.Where(r => r.ValidationAccuracy is not null).Select(r => r.Step));
            Assert.All(g.History, r => Assert.InRange(r.ValidationAccuracy ?? 0, 0, 1));
            Assert.Equal(plain.Select(r => (r.Step, r.Reward, r.Loss, r.Kl, r.GradNorm)), g.History.Skip(1).Select(r => (r.Step, r.Reward, r.Loss, r.Kl, r.GradNorm)));
            GrpoTrainer.WriteLog(log, g.History);
            GrpoTrainer.WritePlots(Path.Combine(_dir, "validate.png"), g.History);
            Assert.StartsWith("before training: validation accuracy", GrpoTrainer.Describe(g.History[0], 5), StringComparison.Ordinal);
        }
        string[] lines = File.ReadAllLines(log);
        Assert.Equal(6, lines.Length);
        Assert.Equal([true, false, true, false, true, true], lines.Select(l => JsonDocument.Parse(l).RootElement.TryGetProperty("validation_accuracy", out _)));
        // a "validation" section without the task file is refused, naming the field
        var e = Assert.Throws<InvalidDataException>(() => GrpoConfig("bad", model, tasks, 5, "\"validation\": { \"every\": 2 },"));
        Assert.Contains("'validation'", e.Message, StringComparison.Ordinal);
    }

    // DAPO's dynamic sampling: groups whose rewards are all equal (here: every task at an even position of the file,
    // rewarded 2 whatever the completion) are dropped, further prompts are sampled until prompts_per_step groups
    // with differing rewards are found, and a resumed run still reproduces the uninterrupted one
    [Fact]
    public void DynamicSamplingTrainsOnlyGroupsWhoseRewardsDiffer()
    {
        Directory.CreateDirectory(_dir);
        string model = ModelDir("grpo-dynamic", evenOdd: true), tasks = TaskFile(7);
        HashSet<string> constant = TaskSet.Read(tasks).Where((_, i) => i % 2 == 0).Select(t => t.Prompt).ToHashSet();
        double Reward(TaskExample t, IReadOnlyList<int> tokens) => constant.Contains(t.Prompt) ? 2.0 : EvenTokens(t, tokens);
        const string extra = "\"dynamic_sampling\": { \"max_rounds\": 8 }, \"checkpoint_interval\": 2,";
        GrpoStep[] full;
        using (GrpoTrainer g = GrpoTrainer.Create(GrpoConfig("dynamic", model, tasks, 4, extra), Reward))
        {
            g.Run(r =>
            {
                Assert.Equal(2, r.TrainedGroups);
                Assert.True(r.SampledGroups >= 2 && r.SampledGroups % 2 == 0, $"{r.SampledGroups} groups sampled");
                Assert.Equal(16, g.LastSamples.Count);
                Assert.DoesNotContain(g.LastSamples, s => s.Reward == 2.0);
                Assert.All(g.LastSamples.Chunk(8), group => Assert.Contains(group, s => s.Advantage != 0));
            });
            full = g.History.ToArray();
        }
        Assert.Contains(full, r => r.SampledGroups > r.TrainedGroups); // some rounds met constant groups
        Assert.Contains("groups 2/", GrpoTrainer.Describe(full.First(r => r.SampledGroups > r.TrainedGroups), 4), StringComparison.Ordinal);
        AssertResumedRunReproduces(GrpoConfig("dynamic-split", model, tasks, 4, extra), Reward, full, r => (r.Reward, r.Loss, r.GradNorm, r.SampledGroups));
        var e = Assert.Throws<InvalidDataException>(() => GrpoConfig("bad", model, tasks, 4, "\"dynamic_sampling\": { \"max_rounds\": 1 },"));
        Assert.Contains("'dynamic_sampling.max_rounds'", e.Message, StringComparison.Ordinal);
    }

    // branch sampling: every group whose rewards differ gives branch points (where a lower-reward completion leaves the
    // longest prefix it shares with a best one); a group sampled from each is judged on prefix + continuation, kept
    // when its rewards differ, and trained on its continuation only; a resumed run reproduces the uninterrupted one
    [Fact]
    public void BranchSamplingTrainsOnGroupsFromWhereCompletionsDiverged()
    {
        Directory.CreateDirectory(_dir);
        string model = ModelDir("grpo-branch", evenOdd: true), tasks = TaskFile(5);
        const string extra = "\"branch_sampling\": { \"max_groups\": 3 }, \"checkpoint_interval\": 2,";
        const double T = 0.1; // a random model's replies share prefixes only when sampled near its argmax (none at T = 0.3)
        GrpoStep[] full = RunChecked("branch", model, tasks, extra, T, EvenTokens, (g, r) =>
        {
            Assert.InRange(r.BranchGroups, 0, 3);
            Assert.InRange(r.BranchTrained, 0, r.BranchGroups);
            Assert.Equal((2 + r.BranchTrained) * 8, g.LastSamples.Count);
            GrpoTrainer.Sample[] roots = g.LastSamples.Take(16).ToArray(), branches = g.LastSamples.Skip(16).ToArray();
            Assert.All(roots, s => Assert.Equal(0, s.PrefixTokens));
            Assert.All(branches, s => Assert.InRange(s.PrefixTokens, 1, 5)); // at least one shared token, one left to sample
            Assert.All(branches, s => Assert.InRange(s.PrefixTokens + s.Tokens, 2, 6)); // the reply's budget holds
            Assert.All(branches.Chunk(8), group =>
            {
                Assert.Single(group.Select(s => (s.Task, s.PrefixTokens)).Distinct()); // one branch point a group
                Assert.Contains(group, s => s.Advantage != 0);
            });
            Assert.Equal(r.BranchGroups > 0, r.BranchAccuracy is not null);
        });
        Assert.Contains(full, r => r.BranchTrained > 0);
        Assert.Contains("branches ", GrpoTrainer.Describe(full.First(r => r.BranchGroups > 0), 4), StringComparison.Ordinal);
        AssertResumedRunReproduces(GrpoConfig("branch-split", model, tasks, 4, extra, temperature: T), EvenTokens, full,
                                   r => (r.Reward, r.Loss, r.GradNorm, r.BranchGroups, r.BranchTrained, r.BranchAccuracy));
        var e = Assert.Throws<InvalidDataException>(() => GrpoConfig("bad", model, tasks, 4, "\"branch_sampling\": { \"groups\": 2 },"));
        Assert.Contains("'branch_sampling.groups'", e.Message, StringComparison.Ordinal);
    }

    // greedy mining: a round's prompts are the candidates the greedy policy answers wrong (a random model: all of them,
    // so each round takes prompts_per_step of its candidates); with train_roots false only branch groups are trained
    // on; a resumed run reproduces the uninterrupted one
    [Fact]
    public void GreedyMiningSamplesWhatGreedyGetsWrongAndTrainsOnBranchesOnly()
    {
        Directory.CreateDirectory(_dir);
        string model = ModelDir("grpo-mine", evenOdd: true), tasks = TaskFile(9);
        const string extra = "\"greedy_mining\": { \"candidates\": 3 }, \"branch_sampling\": { \"max_groups\": 4, \"train_roots\": false }, \"checkpoint_interval\": 2,";
        GrpoStep[] full = RunChecked("mine", model, tasks, extra, 0.1, EvenTokens, (g, r) =>
        {
            Assert.Equal(3, r.MinedTasks); // one round: its three wrong candidates give the two prompts
            Assert.Equal(3, r.MinedWrong);
            Assert.Equal(2, r.SampledGroups);
            Assert.Equal(0, r.TrainedGroups);
            Assert.Equal(r.BranchTrained * 8, g.LastSamples.Count);
            Assert.All(g.LastSamples, s => Assert.True(s.PrefixTokens > 0));
        });
        Assert.Contains(full, r => r.BranchTrained > 0);
        Assert.Contains("greedy wrong 3/3 ", GrpoTrainer.Describe(full[0], 4), StringComparison.Ordinal);
        AssertResumedRunReproduces(GrpoConfig("mine-split", model, tasks, 4, extra, temperature: 0.1), EvenTokens, full,
                                   r => (r.Reward, r.Loss, r.GradNorm, r.BranchTrained, r.MinedWrong));
        var e = Assert.Throws<InvalidDataException>(() => GrpoConfig("bad", model, tasks, 4, "\"branch_sampling\": { \"train_roots\": 0 },"));
        Assert.Contains("'branch_sampling.train_roots'", e.Message, StringComparison.Ordinal);
    }

    // branch_from_greedy: a mined prompt's greedy reply is cut where it leaves its group's best replies and a branch
    // group is sampled from there, ahead of the sampled replies' branch points (they fill max_groups first); the
    // option needs branch sampling; a resumed run reproduces the uninterrupted one
    [Fact]
    public void GreedyRepliesOfMinedPromptsAreBranchSources()
    {
        Directory.CreateDirectory(_dir);
        string model = ModelDir("grpo-mine-greedy", evenOdd: true), tasks = TaskFile(9);
        const string extra = "\"greedy_mining\": { \"candidates\": 3, \"branch_from_greedy\": true }, \"branch_sampling\": { \"max_groups\": 2, \"train_roots\": false }, \"checkpoint_interval\": 2,";
        // odd tokens rewarded: the even-leaning model's greedy replies are its worst, its samples at T = 0.1 mostly
        // follow them and leave them now and then
        GrpoStep[] full = RunChecked("mine-greedy", model, tasks, extra, 0.1, OddTokens, (g, r) =>
        {
            Assert.InRange(r.GreedyBranchGroups, 0, Math.Min(2, r.BranchGroups)); // at most one a mined prompt, two sampled
            Assert.InRange(r.GreedyBranchTrained, 0, Math.Min(r.GreedyBranchGroups, r.BranchTrained));
            Assert.Equal(r.BranchTrained * 8, g.LastSamples.Count);
            Assert.All(g.LastSamples, s => Assert.InRange(s.PrefixTokens, 1, 5));
        });
        Assert.Contains(full, r => r.GreedyBranchTrained > 0);
        Assert.Contains(full, r => r.GreedyBranchGroups == 2 && r.BranchGroups == 2); // greedy points fill max_groups first
        AssertResumedRunReproduces(GrpoConfig("mine-greedy-split", model, tasks, 4, extra, temperature: 0.1), OddTokens, full,
                                   r => (r.Reward, r.Loss, r.GradNorm, r.BranchTrained, r.GreedyBranchGroups, r.GreedyBranchTrained));
        var e = Assert.Throws<InvalidDataException>(() => GrpoConfig("bad", model, tasks, 4, "\"greedy_mining\": { \"candidates\": 3, \"branch_from_greedy\": true },"));
        Assert.Contains("'greedy_mining.branch_from_greedy'", e.Message, StringComparison.Ordinal);
        Assert.Contains("branch_sampling", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ResumedGrpoRunReproducesTheUninterruptedOne()
    {
        Directory.CreateDirectory(_dir);
        string model = ModelDir("grpo-resume", evenOdd: true), tasks = TaskFile(5);
        const string extra = "\"beta\": 0.05, \"ppo_epochs\": 2, \"checkpoint_interval\": 2,";
        GrpoStep[] full;
        float[][] weights;
        using (GrpoTrainer g = GrpoTrainer.Create(GrpoConfig("full", model, tasks, 5, extra), EvenTokens))
        {
            g.Run();
            full = g.History.ToArray();
            weights = g.Parameters.Trainable.Select(x => x.Values.ToArray()).ToArray();
        }
        Assert.Contains(full, r => r.ClipFraction > 0); // the second pass moves the ratio
        using (GrpoTrainer g = GrpoTrainer.Create(GrpoConfig("split", model, tasks, 5, extra), EvenTokens))
            g.Run(maxSteps: 3); // checkpoint after 2; step 3 is lost
        using (GrpoTrainer g = GrpoTrainer.Create(GrpoConfig("split", model, tasks, 5, extra), EvenTokens))
        {
            Assert.Equal(2, g.Step);
            g.Run();
            Assert.Equal(full.Select(r => (r.Reward, r.Loss, r.Kl, r.ClipFraction, r.GradNorm, r.CompletionLength)),
                         g.History.Select(r => (r.Reward, r.Loss, r.Kl, r.ClipFraction, r.GradNorm, r.CompletionLength)));
            for (int i = 0; i < weights.Length; i++)
                Assert.Equal(weights[i], g.Parameters.Trainable[i].Values.ToArray());
        }
    }
}
