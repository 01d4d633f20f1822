// Input of a multi-token-prediction module (docs/deepseek-architecture.md §5, postnorm convention): for the next token's embedding e and the
// previous depth's hidden state h, u = [enorm(e) ; hnorm(h)] (embedding first, as vLLM, SGLang and Megatron) and
// x0 = eh_proj u, the input of the module's decoder block. Forward shared by inference (Transformer.ForwardMtp) and
// training (TrainingModel), Backward below it.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>The MTP module's input projection: forward and backward.</summary>
public static class Mtp
{
    /// <summary>e [T, H], h [T, H] → u [T, 2H], x0 [T, H]; rstdE, rstdH [T] where the ops keep them.</summary>
    public static void Input<TOps>(TOps ops, MtpWeights w, float eps, ReadOnlySpan<float> e, ReadOnlySpan<float> h, int T,
                                   Span<float> rstdE, Span<float> rstdH, Span<float> u, Span<float> x0) where TOps : ILayerOps
    {
        int H = w.ENorm.Length;
        ops.RmsNorm(e, H, w.ENorm, eps, rstdE, u, 2 * H, T);
        ops.RmsNorm(h, H, w.HNorm, eps, rstdH, u.Slice(H), 2 * H, T);
        ops.MatMul(w.EhProj, u, T, x0);
    }

    /// <summary>
    /// dx0 [N, H] → de, dh [N, H] (overwritten; dh may be dx0's buffer, read first) and the gradients of ENorm, HNorm and
    /// EhProj (+=) into <paramref name="dw"/>. du [N, 2H] is scratch.
    /// </summary>
    public static void InputBackward(ComputeBackend? be, MtpWeights w, MtpWeights dw, ReadOnlySpan<float> e, ReadOnlySpan<float> h, int N,
                                     ReadOnlySpan<float> rstdE, ReadOnlySpan<float> rstdH, ReadOnlySpan<float> u, ReadOnlySpan<float> dx0,
                                     Span<float> du, Span<float> de, Span<float> dh)
    {
        int H = w.ENorm.Length;
        Linear.Backward(be, dx0, u, Linear.F32(w.EhProj), du, Linear.F32(dw.EhProj).Data, N, accumulateDx: false);
        RmsNorm.Backward(be, du, 2 * H, e, H, w.ENorm, rstdE, de, H, dw.ENorm, N, accumulate: false);
        RmsNorm.Backward(be, du.Slice(H), 2 * H, h, H, w.HNorm, rstdH, dh, H, dw.HNorm, N, accumulate: false);
    }
}
