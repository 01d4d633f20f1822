// Forward and backward of the whole model for a [B, T] batch (llm.c gpt2_forward / gpt2_backward):
//   x0 = embed(inputs); x_{l+1} = block_l(x_l); h = RMSNorm(x_L); CE(lm_head(h), targets)
//   MTP module k (docs/deepseek-architecture.md §5, postnorm convention): row (b, i), i < T−k: u = eh_proj([enorm(embed(inputs[b, i+k]));
//   hnorm(h^{k−1}[b, i])]), h^k = shared_head.norm(block_k(u)), CE(shared_head.head(h^k), targets[b, i+k]);
//   h^0 = h, positions i; L_MTP = (λ/D)·Σ_k mean CE_k.
//   Total = CE + L_MTP + Σ_layers balance loss (α, MoE layers only) [+ w_I·L_I, the attention variant's loss].
// With a trained attention variant (DeepSeek-V3.2's indexer, options.Variant): L_I = mean over the main layers of the
// variant's loss against the layer's attention distribution; its gradient reaches only the variant's tensors (added
// during each layer's forward). Warm-up stage: dense attention, the main model frozen (no backward but the variant's,
// Total = w_I·L_I, CE reported only); sparse stage: attention over the variant's selection, every loss as above. The
// MTP modules keep plain dense MLA.
// Activations are preallocated for the batch shape; with Recompute only each block's input is kept and the
// block's forward is rerun right before its backward (same numbers, less memory). Gradients are added into
// ModelParameters.Grads (zero them once per step).
using System.Numerics.Tensors;
using SharpSeek.Model;
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;

namespace SharpSeek.Training;

/// <summary>Shape and loss options of a <see cref="TrainingModel"/>.</summary>
public sealed record TrainingModelOptions
{
    /// <summary>Sequences per batch (B).</summary>
    public required int BatchSize { get; init; }

    /// <summary>Tokens per sequence (T).</summary>
    public required int SequenceLength { get; init; }

    /// <summary>Keep only block inputs and recompute each block's activations during backward.</summary>
    public bool Recompute { get; init; }

    /// <summary>MTP loss weight λ; 0 skips the MTP modules.</summary>
    public float MtpLambda { get; init; }

    /// <summary>Sequence-wise balance loss weight α; 0 skips it.</summary>
    public float BalanceAlpha { get; init; }

    /// <summary>Where kernels and parallel loops run.</summary>
    public ComputeBackend Backend { get; init; } = ComputeBackend.Cpu;

    /// <summary>Training of the config's attention variant (train.json "indexer"); null: plain dense MLA, the variant untouched.</summary>
    public VariantTrainingOptions? Variant { get; init; }
}

/// <summary>
/// A per-token objective over log-probabilities: row r (= b·T + t) whose target has log-probability
/// <paramref name="logProb"/>; returns the row's loss and sets <paramref name="dLogProb"/> = dloss/dlogProb.
/// </summary>
public delegate double TokenObjective(int row, float logProb, out float dLogProb);

/// <summary>
/// Losses of one step: Total = Ce + MtpLambda·Mtp + Balance + w_I·Variant (warm-up: Total = w_I·Variant). Variant: the
/// attention variant's loss (the indexer's KL), mean over layers.
/// </summary>
public readonly record struct LossBreakdown(double Total, double Ce, double Mtp, double Balance, double Variant = 0);

/// <summary>Trains a model: fused forward + backward over one batch shape.</summary>
public sealed unsafe class TrainingModel
{
    private readonly ModelParameters _p;
    private readonly ModelConfig _c;
    private readonly TrainingModelOptions _o;
    private readonly ComputeBackend _be;
    private readonly int _B, _T, _N, _H, _V, _rowsPerChunk;
    private readonly float[] _cos, _sin;
    private readonly float[][] _x;               // block inputs [L+1][N·H]
    private readonly BlockActivations[] _acts;   // per layer, or one shared when recomputing
    private readonly DecoderBlock _block;
    private readonly float[] _rstdF, _hpost, _dh, _dxA, _dxB, _logits;
    private readonly double[] _rowLoss;
    private readonly float[] _rowLogProb;        // log p(target) per row in log-probability mode
    private TokenObjective? _objective;
    private bool _logProbsOnly;
    private readonly int[] _tgt;
    private readonly MtpState[] _mtp;
    private readonly int[][] _counts;            // expert load per MoE layer (main, then MTP) of the last forward
    private readonly int[][] _choices;           // chosen experts [rows, K] per MoE layer of the last forward
    private readonly string[] _moeNames;
    private readonly MoeWeights[] _moeLayers;
    private readonly Action<int> _headRows;
    private readonly PinnedBuffer _headF, _headB; // LM / MTP head packed for the forward (NT) and the input gradient (NN)
    private HeadJob _head;

    public TrainingModel(ModelParameters parameters, TrainingModelOptions options)
    {
        _p = parameters;
        _c = parameters.Config;
        _o = options;
        _be = options.Backend;
        ModelConfig c = _c;
        if (options.BatchSize < 1 || options.SequenceLength < 1)
            throw new ArgumentException($"batch {options.BatchSize} x {options.SequenceLength} must be positive");
        _B = options.BatchSize;
        _T = options.SequenceLength;
        _N = _B * _T;
        _H = c.HiddenSize;
        _V = c.VocabSize;
        _rowsPerChunk = Math.Clamp((1 << 21) / _V / (2 * HeadRows) * (2 * HeadRows), 2 * HeadRows, Math.Max(_N, 2 * HeadRows)); // whole pairs of head tasks
        int L = c.NumHiddenLayers, half = c.QkRopeHeadDim / 2;

        var rope = new RotaryEmbedding(c);
        _cos = new float[_T * half];
        _sin = new float[_T * half];
        for (int t = 0; t < _T; t++)
            rope.CosSin(t, _cos.AsSpan(t * half, half), _sin.AsSpan(t * half, half));

        bool anyMoe = false, anyDense = false;
        for (int l = 0; l < L; l++)
        {
            if (c.IsMoeLayer(l)) anyMoe = true; else anyDense = true;
        }
        if (options.Variant is { } v)
        {
            if (c.GetAttentionVariant() is null)
                throw new ArgumentException($"the model ({c.ModelType}) has no attention variant to train (an indexer needs deepseek_v32)");
            if (!(v.LossWeight > 0) || !float.IsFinite(v.LossWeight))
                throw new ArgumentException($"the variant's loss weight must be positive, got {v.LossWeight}");
        }
        // the variant's loss is averaged over layers: each layer's gradient carries w_I / L
        VariantTrainingOptions? perLayer = options.Variant is { } vo ? vo with { LossWeight = vo.LossWeight / L } : null;
        _block = new DecoderBlock(c, _B, _T, anyMoe, anyDense, perLayer);
        _x = new float[L + 1][];
        for (int l = 0; l <= L; l++)
            _x[l] = new float[_N * _H];
        if (options.Recompute)
        {
            // one activation set; a dense one too when the model mixes both kinds
            var dense = anyDense ? new BlockActivations(c, _B, _T, moe: false) : null;
            var moe = anyMoe ? new BlockActivations(c, _B, _T, moe: true) : null;
            _acts = Enumerable.Range(0, L).Select(l => c.IsMoeLayer(l) ? moe! : dense!).ToArray();
        }
        else
        {
            _acts = Enumerable.Range(0, L).Select(l => new BlockActivations(c, _B, _T, c.IsMoeLayer(l))).ToArray();
        }
        _rstdF = new float[_N];
        _hpost = new float[_N * _H];
        _dh = new float[_N * _H];
        _dxA = new float[_N * _H];
        _dxB = new float[_N * _H];
        _logits = new float[_rowsPerChunk * _V];
        _headF = new PinnedBuffer(Gemm.PackedLength(_V, _H));
        _headB = new PinnedBuffer(Gemm.PackedLength(_H, _V));
        _rowLoss = new double[_N];
        _rowLogProb = new float[_N];
        _tgt = new int[_N];

        int D = options.MtpLambda > 0 ? Math.Min(parameters.Weights.Mtp.Length, _T - 1) : 0;
        _mtp = new MtpState[D];
        for (int k = 1; k <= D; k++)
            _mtp[k - 1] = new MtpState(c, _B, _T - k);

        var names = new List<string>();
        for (int l = 0; l < L; l++)
        {
            if (c.IsMoeLayer(l)) names.Add($"layer {l}");
        }
        for (int k = 0; k < D; k++)
            names.Add($"mtp {k}");
        _moeNames = names.ToArray();
        _moeLayers = parameters.Weights.Layers.Where(l => l.Moe is not null).Select(l => l.Moe!)
            .Concat(parameters.Weights.Mtp.Take(D).Select(m => m.Layer.Moe!)).ToArray();
        _counts = names.Select(_ => new int[Math.Max(1, c.NRoutedExperts)]).ToArray();
        _choices = names.Select(_ => new int[_N * c.NumExpertsPerTok]).ToArray();
        _headRows = HeadRowsTask;
    }

    /// <summary>The parameters this model trains.</summary>
    public ModelParameters Parameters => _p;

    /// <summary>Batch shape and loss options.</summary>
    public TrainingModelOptions Options => _o;

    /// <summary>Names of the MoE layers whose loads <see cref="ExpertCounts"/> reports ("layer 3", "mtp 0").</summary>
    public IReadOnlyList<string> MoeLayerNames => _moeNames;

    /// <summary>The MoE weights of each layer <see cref="ExpertCounts"/> reports.</summary>
    public IReadOnlyList<MoeWeights> MoeLayers => _moeLayers;

    /// <summary>Tokens routed to each expert, per MoE layer, in the last forward pass (main layers, then MTP).</summary>
    public IReadOnlyList<int[]> ExpertCounts => _counts;

    /// <summary>Experts chosen for each row [rows, K] per MoE layer in the last forward pass (MTP layers have fewer rows).</summary>
    public IReadOnlyList<int[]> ExpertChoices => _choices;

    /// <summary>
    /// Forward and backward over inputs [B·T] with next-token targets [B·T] (−1: no loss at that position);
    /// adds the gradients into <see cref="ModelParameters.Grads"/> and returns the losses.
    /// </summary>
    public LossBreakdown ForwardBackward(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets)
    {
        CheckBatch(inputs, targets);
        ModelWeights w = _p.Weights, g = _p.Grads;
        int L = _c.NumHiddenLayers, N = _N, H = _H;
        float alpha = _o.BalanceAlpha;
        double balance = ForwardBlocks(inputs, g);
        RmsNorm.Forward(_be, _x[L], w.Norm, (float)_c.RmsNormEps, _rstdF, _hpost, N);

        // main head: loss and dh (overwritten), dLmHead
        int valid = CountValid(targets);
        targets.CopyTo(_tgt);
        if (_o.Variant is { Stage: VariantStage.Warmup } warm)
        {
            // main model frozen: the variant's gradient was added during the forward; CE is only reported
            double ce0 = HeadLoss(Params.F32(w.LmHead), null, _hpost, _tgt, N, 1f, _dh, backward: false) / Math.Max(1, valid);
            return new LossBreakdown(warm.LossWeight * _variantLoss, ce0, 0, 0, _variantLoss);
        }
        double ce = HeadLoss(Params.F32(w.LmHead), Params.F32(g.LmHead), _hpost, _tgt, N, valid == 0 ? 0f : 1f / valid, _dh, backward: true) / Math.Max(1, valid);

        // MTP modules: forward in order, backward in reverse (module k feeds module k+1)
        double mtp = 0;
        int D = _mtp.Length;
        for (int k = 1; k <= D; k++)
        {
            (double loss, double bal) = MtpForward(k, inputs, targets);
            mtp += loss / D;
            balance += bal;
        }
        for (int k = D; k >= 1; k--)
            MtpBackward(k, inputs);

        BackwardBlocks(inputs);
        double total = ce + _o.MtpLambda * mtp + balance + (_o.Variant?.LossWeight ?? 0) * _variantLoss;
        return new LossBreakdown(total, ce, mtp, balance, _variantLoss);
    }

    /// <summary>
    /// Forward and backward of a per-token objective over the log-probabilities of the targets (policy-gradient
    /// losses such as GRPO's): for every row r with targets[r] ≥ 0, <paramref name="objective"/> gets
    /// lp = log p(targets[r] | inputs[..r]) and returns that row's loss and dloss/dlp; the gradient
    /// dloss/dlogits = dloss/dlp · (onehot − softmax) flows back through the model into
    /// <see cref="ModelParameters.Grads"/> (+=). <paramref name="objective"/> is called from several threads at once.
    /// The log-probabilities are left in <paramref name="logProbs"/> [B·T] (0 where targets[r] = −1). Returns the
    /// summed loss. Needs a model built with MtpLambda 0 (MTP is not part of such objectives).
    /// </summary>
    public double ForwardBackward(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, TokenObjective objective, Span<float> logProbs)
    {
        ArgumentNullException.ThrowIfNull(objective);
        if (_mtp.Length > 0)
            throw new InvalidOperationException("a per-token objective trains the main model only: build the TrainingModel with MtpLambda 0");
        if (logProbs.Length < _N)
            throw new ArgumentException($"logProbs must hold B*T = {_N} values");
        CheckBatch(inputs, targets);
        ModelWeights w = _p.Weights, g = _p.Grads;
        ForwardBlocks(inputs);
        RmsNorm.Forward(_be, _x[_c.NumHiddenLayers], w.Norm, (float)_c.RmsNormEps, _rstdF, _hpost, _N);
        targets.CopyTo(_tgt);
        _objective = objective;
        double loss;
        try
        {
            loss = HeadLoss(Params.F32(w.LmHead), Params.F32(g.LmHead), _hpost, _tgt, _N, 1f, _dh, backward: true);
        }
        finally
        {
            _objective = null;
        }
        _rowLogProb.AsSpan(0, _N).CopyTo(logProbs);
        BackwardBlocks(inputs);
        return loss;
    }

    /// <summary>
    /// log p(targets[r] | inputs[..r]) of every row into <paramref name="logProbs"/> [B·T] (0 where targets[r] = −1),
    /// without gradients; the same numbers the objective of
    /// <see cref="ForwardBackward(ReadOnlySpan{int}, ReadOnlySpan{int}, TokenObjective, Span{float})"/> receives.
    /// </summary>
    public void LogProbs(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, Span<float> logProbs)
    {
        if (logProbs.Length < _N)
            throw new ArgumentException($"logProbs must hold B*T = {_N} values");
        CheckBatch(inputs, targets);
        ForwardBlocks(inputs);
        RmsNorm.Forward(_be, _x[_c.NumHiddenLayers], _p.Weights.Norm, (float)_c.RmsNormEps, _rstdF, _hpost, _N);
        targets.CopyTo(_tgt);
        _logProbsOnly = true;
        try
        {
            HeadLoss(Params.F32(_p.Weights.LmHead), null, _hpost, _tgt, _N, 1f, _dh, backward: false);
        }
        finally
        {
            _logProbsOnly = false;
        }
        _rowLogProb.AsSpan(0, _N).CopyTo(logProbs);
    }

    // final norm, blocks in reverse, embedding: from _dh (dloss/d post-norm hidden) into the gradients
    private void BackwardBlocks(ReadOnlySpan<int> inputs)
    {
        ModelWeights w = _p.Weights, g = _p.Grads;
        int L = _c.NumHiddenLayers, N = _N, H = _H;
        float alpha = _o.BalanceAlpha;
        Span<float> dx = _dxA.AsSpan(0, N * H), dxNext = _dxB.AsSpan(0, N * H);
        RmsNorm.Backward(_be, _dh, H, _x[L], H, w.Norm, _rstdF, dx, H, g.Norm, N, accumulate: false);
        for (int l = L - 1; l >= 0; l--)
        {
            if (_o.Recompute)
                _block.Forward(_be, w.Layers[l], _x[l], _cos, _sin, _acts[l], dxNext, alpha); // refill activations (dxNext is scratch here)
            _block.Backward(_be, w.Layers[l], g.Layers[l], _x[l], _cos, _sin, _acts[l], dx, dxNext, alpha);
            Span<float> tmp = dx;
            dx = dxNext;
            dxNext = tmp;
        }
        Embedding.Backward(_be, inputs, dx, Params.F32(g.Embed).Data, H);
    }

    /// <summary>Mean next-token cross-entropy of the main model without gradients (evaluation).</summary>
    public double Evaluate(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets)
    {
        CheckBatch(inputs, targets);
        ForwardBlocks(inputs);
        RmsNorm.Forward(_be, _x[_c.NumHiddenLayers], _p.Weights.Norm, (float)_c.RmsNormEps, _rstdF, _hpost, _N);
        int valid = CountValid(targets);
        targets.CopyTo(_tgt);
        return HeadLoss(Params.F32(_p.Weights.LmHead), null, _hpost, _tgt, _N, 1f, _dh, backward: false) / Math.Max(1, valid);
    }

    /// <summary>Main-model logits [B·T, V] of the training forward (to compare with <see cref="Transformer"/>).</summary>
    public void Logits(ReadOnlySpan<int> inputs, Span<float> logits)
    {
        if (inputs.Length != _N || logits.Length < (long)_N * _V)
            throw new ArgumentException($"Logits: inputs must hold {_N} ids and logits {_N} x {_V} floats");
        ForwardBlocks(inputs);
        RmsNorm.Forward(_be, _x[_c.NumHiddenLayers], _p.Weights.Norm, (float)_c.RmsNormEps, _rstdF, _hpost, _N);
        Linear.Forward(_be, _hpost, Params.F32(_p.Weights.LmHead), logits, _N);
    }

    private void CheckBatch(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets)
    {
        if (inputs.Length != _N || targets.Length != _N)
            throw new ArgumentException($"batch must hold B*T = {_B}*{_T} inputs and targets, got {inputs.Length} and {targets.Length}");
        foreach (int t in targets)
        {
            if (t < -1 || t >= _V)
                throw new ArgumentOutOfRangeException(nameof(targets), $"target {t} outside the vocabulary of {_V}");
        }
    }

    private static int CountValid(ReadOnlySpan<int> targets)
    {
        int n = 0;
        foreach (int t in targets)
        {
            if (t >= 0) n++;
        }
        return n;
    }

    /// <summary>Per main layer, the positions each row attended to in the last forward (sparse stage), else null.</summary>
    public IReadOnlyList<PositionSelection?> Selections => _acts.Select(a => a.Attn.Selection).ToArray();

    /// <summary>The attention variant's loss of the last forward (mean over layers; 0 without a trained variant).</summary>
    public double VariantLoss => _variantLoss;

    private double _variantLoss;

    /// <summary>
    /// Embedding and every block; returns the summed balance loss. A trained attention variant adds its gradient into
    /// <paramref name="grads"/> when given, and its loss into <see cref="VariantLoss"/>.
    /// </summary>
    private double ForwardBlocks(ReadOnlySpan<int> inputs, ModelWeights? grads = null)
    {
        ModelWeights w = _p.Weights;
        Embedding.Forward(_be, inputs, Params.F32(w.Embed), _x[0]);
        double balance = 0, variant = 0;
        int m = 0;
        for (int l = 0; l < _c.NumHiddenLayers; l++)
        {
            _block.Forward(_be, w.Layers[l], _x[l], _cos, _sin, _acts[l], _x[l + 1], _o.BalanceAlpha, grads?.Layers[l]);
            variant += _acts[l].Attn.VariantLoss;
            if (_acts[l].Moe is { } moe && w.Layers[l].Moe is not null)
            {
                moe.Count.CopyTo(_counts[m], 0);
                moe.Experts.CopyTo(_choices[m++], 0);
                balance += moe.BalanceLoss;
            }
        }
        _variantLoss = _o.Variant is null ? 0 : variant / _c.NumHiddenLayers;
        return balance;
    }

    /// <summary>
    /// Σ over rows of CE(x·headᵀ, targets) in chunks of rows; with backward, dx [N, H] is overwritten by
    /// scale·dloss/dx and dhead += scale·dloss/dhead. Returns the unscaled sum of row losses.
    /// </summary>
    private double HeadLoss(F32Matrix head, F32Matrix? dhead, ReadOnlySpan<float> x, int[] tgt, int N, float scale,
                            Span<float> dx, bool backward)
    {
        int H = _H, V = _V;
        float* packF = _headF.Pointer, packB = _headB.Pointer;
        fixed (float* ph = head.Data, px = x, pdx = dx, plog = _logits)
        {
            // the head is packed once per call: B(h, v) = head[v, h] for the logits, B(v, h) = head[v, h] for dx
            Gemm.Pack(_be, true, V, H, ph, H, packF);
            if (backward)
                Gemm.Pack(_be, false, H, V, ph, H, packB);
            for (int r0 = 0; r0 < N; r0 += _rowsPerChunk)
            {
                int m = Math.Min(_rowsPerChunk, N - r0);
                float* xr = px + (long)r0 * H;
                // logits, loss and dx of a few rows at a time, so each task's logits stay in cache between the three steps
                _head = new HeadJob(packF, packB, xr, plog, pdx + (long)r0 * H, tgt, r0, m, scale, backward);
                _be.For((m + HeadRows - 1) / HeadRows, _headRows);
                if (backward)
                {
                    fixed (float* pdh = dhead!.Data)
                        Gemm.Run(_be, GemmKind.TN, V, H, m, plog, V, xr, H, pdh, H, accumulate: true);
                }
            }
            _head = default;
        }
        double sum = 0;
        for (int r = 0; r < N; r++)
            sum += _rowLoss[r];
        return sum;
    }

    private const int HeadRows = 48; // rows per fused head task (8 register tiles)

    private readonly struct HeadJob(float* packF, float* packB, float* x, float* logits, float* dx, int[] targets, int row0, int m,
                                    float scale, bool backward)
    {
        public readonly float* PackF = packF, PackB = packB, X = x, Logits = logits, Dx = dx;
        public readonly int[] Targets = targets;
        public readonly int Row0 = row0, M = m;
        public readonly float Scale = scale;
        public readonly bool Backward = backward;
    }

    private void HeadRowsTask(int task)
    {
        HeadJob j = _head;
        int H = _H, V = _V, i0 = task * HeadRows, i1 = Math.Min(j.M, i0 + HeadRows);
        Gemm.RunPacked(GemmKind.NT, j.M, V, H, j.X, H, j.PackF, H, j.Logits, V, false, i0, i1, 0, V);
        for (int i = i0; i < i1; i++)
        {
            var row = new Span<float>(j.Logits + (long)i * V, V);
            int r = j.Row0 + i;
            if (_objective is null && !_logProbsOnly)
            {
                _rowLoss[r] = j.Backward ? CrossEntropy.ForwardBackward(row, j.Targets[r], j.Scale) : CrossEntropy.Loss(row, j.Targets[r]);
                continue;
            }
            // log-probability mode: the fused kernel leaves softmax − onehot in the row, which the objective scales
            int target = j.Targets[r];
            float lp = -(float)CrossEntropy.ForwardBackward(row, target, 1f); // target −1: 0, row cleared
            _rowLogProb[r] = lp;
            _rowLoss[r] = 0;
            if (_objective is { } f && target >= 0)
            {
                _rowLoss[r] = f(r, lp, out float dlp);
                TensorPrimitives.Multiply(row, -dlp, row); // dloss/dlogits = dlp · (onehot − softmax)
            }
        }
        if (j.Backward)
            Gemm.RunPacked(GemmKind.NN, j.M, H, V, j.Logits, V, j.PackB, V, j.Dx, H, false, i0, i1, 0, H);
    }

    // ---- multi-token prediction ----

    private sealed class MtpState
    {
        public MtpState(ModelConfig c, int B, int S)
        {
            int N = B * S, H = c.HiddenSize;
            this.S = S;
            Block = new DecoderBlock(c, B, S, anyMoe: true, anyDense: false);
            Acts = new BlockActivations(c, B, S, moe: true);
            Tokens = new int[N];
            Targets = new int[N];
            EIn = new float[N * H];
            HIn = new float[N * H];
            RstdE = new float[N];
            RstdH = new float[N];
            U = new float[N * 2 * H];
            X0 = new float[N * H];
            X1 = new float[N * H];
            RstdO = new float[N];
            Out = new float[N * H];
            DOut = new float[N * H];
            DX1 = new float[N * H];
            DX0 = new float[N * H];
            DU = new float[N * 2 * H];
        }

        public int S { get; }
        public DecoderBlock Block { get; }
        public BlockActivations Acts { get; }
        public int[] Tokens { get; }
        public int[] Targets { get; }
        public float[] EIn { get; }
        public float[] HIn { get; }
        public float[] RstdE { get; }
        public float[] RstdH { get; }
        public float[] U { get; }
        public float[] X0 { get; }
        public float[] X1 { get; }
        public float[] RstdO { get; }
        /// <summary>h^k after shared_head.norm [N, H]: input of the head and of module k+1.</summary>
        public float[] Out { get; }
        public float[] DOut { get; }
        public float[] DX1 { get; }
        public float[] DX0 { get; }
        public float[] DU { get; }
    }

    private (double Loss, double Balance) MtpForward(int k, ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets)
    {
        MtpState s = _mtp[k - 1];
        MtpWeights w = _p.Weights.Mtp[k - 1];
        MtpWeights g = _p.Grads.Mtp[k - 1];
        int S = s.S, N = _B * S, H = _H;
        float eps = (float)_c.RmsNormEps;
        ReadOnlySpan<float> prev = k == 1 ? _hpost : _mtp[k - 2].Out;
        int prevS = k == 1 ? _T : _mtp[k - 2].S;
        for (int b = 0; b < _B; b++)
        {
            inputs.Slice(b * _T + k, S).CopyTo(s.Tokens.AsSpan(b * S, S));
            targets.Slice(b * _T + k, S).CopyTo(s.Targets.AsSpan(b * S, S));
        }
        fixed (float* pp = prev, ph = s.HIn)
            Rows.For(_be, N, 64, new ShiftJob(pp, ph, S, prevS, H, toPrev: false));
        Embedding.Forward(_be, s.Tokens, Params.F32(w.Embed), s.EIn);
        Mtp.Input(new TrainingOps(_be), w, eps, s.EIn, s.HIn, N, s.RstdE, s.RstdH, s.U, s.X0);
        s.Block.Forward(_be, w.Layer, s.X0, _cos, _sin, s.Acts, s.X1, _o.BalanceAlpha);
        _counts[_counts.Length - _mtp.Length + k - 1].AsSpan().Clear();
        s.Acts.Moe!.Count.CopyTo(_counts[_counts.Length - _mtp.Length + k - 1], 0);
        s.Acts.Moe.Experts.CopyTo(_choices[_counts.Length - _mtp.Length + k - 1], 0);
        RmsNorm.Forward(_be, s.X1, w.HeadNorm, eps, s.RstdO, s.Out, N);
        int valid = CountValid(s.Targets);
        float scale = valid == 0 ? 0f : _o.MtpLambda / _mtp.Length / valid;
        double loss = HeadLoss(Params.F32(w.Head), Params.F32(g.Head), s.Out, s.Targets, N, scale, s.DOut, backward: true) / Math.Max(1, valid);
        return (loss, s.Acts.Moe.BalanceLoss);
    }

    // rows n = b·S + i of the MTP module ↔ rows b·prevS + i of the previous depth: copy (forward) or add (backward)
    private readonly struct ShiftJob(float* prev, float* rows, int S, int prevS, int H, bool toPrev) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            for (int n = r0; n < r1; n++)
            {
                float* p = prev + ((long)(n / S) * prevS + n % S) * H, r = rows + (long)n * H;
                if (toPrev)
                    Vec.Add(p, r, p, H);
                else
                    Buffer.MemoryCopy(p, r, H * 4L, H * 4L);
            }
        }
    }

    private void MtpBackward(int k, ReadOnlySpan<int> inputs)
    {
        MtpState s = _mtp[k - 1];
        MtpWeights w = _p.Weights.Mtp[k - 1];
        MtpWeights g = _p.Grads.Mtp[k - 1];
        int S = s.S, N = _B * S, H = _H;
        RmsNorm.Backward(_be, s.DOut, H, s.X1, H, w.HeadNorm, s.RstdO, s.DX1, H, g.HeadNorm, N, accumulate: false);
        s.Block.Backward(_be, w.Layer, g.Layer, s.X0, _cos, _sin, s.Acts, s.DX1, s.DX0, _o.BalanceAlpha);
        // the input's embedding and hidden halves; the hidden half flows to h^{k-1}
        Span<float> dPrev = k == 1 ? _dh : _mtp[k - 2].DOut;
        int prevS = k == 1 ? _T : _mtp[k - 2].S;
        Span<float> dE = s.DX1.AsSpan(0, N * H), dH = s.DX0.AsSpan(0, N * H); // free now: reuse
        Mtp.InputBackward(_be, w, g, s.EIn, s.HIn, N, s.RstdE, s.RstdH, s.U, s.DX0, s.DU, dE, dH);
        fixed (float* pp = dPrev, ph = dH)
            Rows.For(_be, N, 64, new ShiftJob(pp, ph, S, prevS, H, toPrev: true));
        Embedding.Backward(_be, s.Tokens, dE, Params.F32(g.Embed).Data, H);
    }
}
