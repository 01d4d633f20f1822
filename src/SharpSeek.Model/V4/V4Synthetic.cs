// Random-weight DeepSeek-V4 models in memory (fp32), for tests and examples that need a V4 model of a given shape
// (a vocabulary that matches a real tokenizer, say) without a file: linear weights N(0, 1/fan_in), norms 1 + N(0, 0.1),
// the scales of tests/fixtures/llama-cpp/deepseek4/make.py otherwise.
using SharpSeek.Tensors;

namespace SharpSeek.Model.V4;

/// <summary>Builds random <see cref="V4Weights"/> for a config.</summary>
public static class V4Synthetic
{
    public static V4Weights Create(V4Config c, int seed = 1)
    {
        c.Validate("V4Synthetic");
        var rng = new Random(seed);
        int H = c.HiddenSize, V = c.VocabSize, Hc = c.HcMult, mix = c.HcMixDim;
        float Normal(double sd) => (float)(sd * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        float[] Values(int n, double sd, double mean = 0) => Enumerable.Range(0, n).Select(_ => (float)mean + Normal(sd)).ToArray();
        WeightMatrix M(int rows, int cols, double? sd = null) => new F32Matrix(rows, cols, Values(rows * cols, sd ?? 1 / Math.Sqrt(cols)));
        float[] Norm(int n) => Values(n, 0.1, 1);
        V4CompressorWeights Compressor(int ratio, int width)
        {
            int coff = ratio == 4 ? 2 : 1;
            return new V4CompressorWeights { Wkv = M(coff * width, H), Wgate = M(coff * width, H), Ape = Values(ratio * coff * width, 0.5), Norm = Norm(width) };
        }
        V4LayerWeights Layer(int l)
        {
            int ratio = c.Ratio(l), E = c.NRoutedExperts, K = c.NumExpertsPerTok, I = c.MoeIntermediateSize, Is = I * c.NSharedExperts;
            bool hash = c.IsHashLayer(l) && l < c.NumHiddenLayers;
            int[]? table = null;
            if (hash)
            {
                table = new int[V * K];
                for (int v = 0; v < V; v++)
                {
                    int[] pick = Enumerable.Range(0, E).OrderBy(_ => rng.Next()).Take(K).ToArray();
                    pick.CopyTo(table, v * K);
                }
            }
            return new V4LayerWeights
            {
                AttnNorm = Norm(H), FfnNorm = Norm(H),
                HcAttnFn = M(mix, Hc * H, 0.05), HcAttnBase = Values(mix, 0.5), HcAttnScale = Values(3, 0.25, 1),
                HcFfnFn = M(mix, Hc * H, 0.05), HcFfnBase = Values(mix, 0.5), HcFfnScale = Values(3, 0.25, 1),
                WqA = M(c.QLoraRank, H), QNorm = Norm(c.QLoraRank), WqB = M(c.NumAttentionHeads * c.HeadDim, c.QLoraRank),
                Wkv = M(c.HeadDim, H), KvNorm = Norm(c.HeadDim),
                WoA = M(c.OGroups * c.OLoraRank, c.NumAttentionHeads * c.HeadDim / c.OGroups), WoB = M(H, c.OGroups * c.OLoraRank),
                Sinks = Values(c.NumAttentionHeads, 1),
                Compressor = ratio != 0 ? Compressor(ratio, c.HeadDim) : null,
                Indexer = ratio == 4
                    ? new V4IndexerWeights { WqB = M(c.IndexHeads * c.IndexHeadDim, c.QLoraRank), Proj = M(c.IndexHeads, H), Compressor = Compressor(4, c.IndexHeadDim) }
                    : null,
                Gate = M(E, H), Bias = hash ? null : Values(E, 0.1), Tid2Eid = table,
                ExpertGate = Enumerable.Range(0, E).Select(_ => M(I, H)).ToArray(),
                ExpertUp = Enumerable.Range(0, E).Select(_ => M(I, H)).ToArray(),
                ExpertDown = Enumerable.Range(0, E).Select(_ => M(H, I)).ToArray(),
                SharedGate = M(Is, H), SharedUp = M(Is, H), SharedDown = M(H, Is),
            };
        }
        WeightMatrix embed = M(V, H, 1), head = M(V, H);
        float[] norm = Norm(H);
        V4LayerWeights[] layers = Enumerable.Range(0, c.NumHiddenLayers).Select(Layer).ToArray();
        V4MtpWeights[] mtp = Enumerable.Range(0, c.NumNextnPredictLayers).Select(m => new V4MtpWeights
        {
            EhProj = M(H, 2 * H), ENorm = Norm(H), HNorm = Norm(H), HeadNorm = Norm(H), Layer = Layer(c.NumHiddenLayers + m),
        }).ToArray();
        return new V4Weights(c, embed, head, norm, M(Hc, Hc * H, 0.05), Values(Hc, 0.5), Values(1, 0.25, 1), layers, mtp);
    }
}
