// DeepSeekMoE routing (docs/deepseek-architecture.md §4): scores, group-limited selection, top-K, weights.
//   V3 (noaux_tc, sigmoid): select on s + bias with groups scored by the sum of their top-2; weights from s.
//   V2 (softmax): greedy, or group_limited_greedy with groups scored by their max.
// Backward (training): weights → scores (WeightsBackward), scores → logits (AffinitiesBackward).
// Dropped groups are masked with -inf (DeepSeek's code; transformers uses 0.0, docs/deepseek-architecture.md §7.2).
// Ties: the higher value wins, then the lower index (docs/deepseek-architecture.md §4.1, UNCONFIRMED in every source).
using System.Numerics.Tensors;
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>Chooses experts for one token from its router logits.</summary>
public static class Router
{
    /// <summary>Scratch floats <see cref="Route"/> needs for a config.</summary>
    public static int ScratchSize(ModelConfig c) => 2 * c.NRoutedExperts + c.NGroup;

    /// <summary>
    /// logits [E] → experts [K] and weights [K] (already normalized and scaled), in selection order.
    /// </summary>
    public static void Route(ModelConfig c, ReadOnlySpan<float> logits, ReadOnlySpan<float> bias,
                             Span<int> experts, Span<float> weights, Span<float> scratch)
    {
        int E = c.NRoutedExperts;
        RouteRows(c, logits.Slice(0, E), bias, scratch.Slice(0, E), experts, weights, scratch.Slice(E));
    }

    /// <summary>
    /// The route step of n tokens (inference and training): logits [n·E] → scores [n·E] (the affinities, which training
    /// keeps for the backward), experts [n·K] and weights [n·K] per token. scratch: E + n_group floats.
    /// </summary>
    public static void RouteRows(ModelConfig c, ReadOnlySpan<float> logits, ReadOnlySpan<float> bias, Span<float> scores,
                                 Span<int> experts, Span<float> weights, Span<float> scratch)
    {
        int E = c.NRoutedExperts, K = c.NumExpertsPerTok;
        Affinities(c, logits, scores);
        for (int t = 0; t < logits.Length / E; t++)
            Select(c, scores.Slice(t * E, E), bias, experts.Slice(t * K, K), weights.Slice(t * K, K), scratch);
    }

    /// <summary>Step 1, affinities of whole rows: logits [n·E] → scores [n·E], sigmoid (elementwise, one call) or a
    /// softmax per row.</summary>
    public static void Affinities(ModelConfig c, ReadOnlySpan<float> logits, Span<float> scores)
    {
        int E = c.NRoutedExperts;
        if (c.ScoringFunc == ScoringFunc.Sigmoid)
        {
            TensorPrimitives.Sigmoid(logits, scores.Slice(0, logits.Length));
            return;
        }
        logits.CopyTo(scores);
        for (int r = 0; r < logits.Length; r += E)
            Ops.Softmax(scores.Slice(r, E));
    }

    /// <summary>
    /// Steps 2-5 of routing from affinities already computed (scores [E]): biased selection scores, group limit,
    /// top-K, then the weights. scratch: E + n_group floats.
    /// </summary>
    public static void Select(ModelConfig c, ReadOnlySpan<float> scores, ReadOnlySpan<float> bias,
                              Span<int> experts, Span<float> weights, Span<float> scratch)
    {
        int E = c.NRoutedExperts, K = c.NumExpertsPerTok, G = c.NGroup;
        Span<float> select = scratch.Slice(0, E);
        Span<float> groupScore = scratch.Slice(E, G);

        // 2. selection scores (bias only for noaux_tc, only for choosing)
        scores.Slice(0, E).CopyTo(select);
        if (c.TopkMethod == TopKMethod.NoAuxTc && !bias.IsEmpty)
            TensorPrimitives.Add(select, bias.Slice(0, E), select);

        // 3. group limit
        if (c.TopkMethod != TopKMethod.Greedy && G > 1)
        {
            int per = E / G;
            for (int g = 0; g < G; g++)
            {
                ReadOnlySpan<float> grp = select.Slice(g * per, per);
                groupScore[g] = c.TopkMethod == TopKMethod.NoAuxTc ? SumTop2(grp) : TensorPrimitives.Max(grp);
            }
            Span<bool> keep = stackalloc bool[G];
            for (int k = 0; k < c.TopkGroup; k++)
                keep[ArgMaxExcluding(groupScore, keep)] = true;
            for (int g = 0; g < G; g++)
            {
                if (!keep[g])
                    select.Slice(g * per, per).Fill(float.NegativeInfinity);
            }
        }

        // 4. top-K
        Span<bool> taken = E <= 1024 ? stackalloc bool[E] : new bool[E];
        for (int k = 0; k < K; k++)
        {
            int e = ArgMaxExcluding(select, taken);
            taken[e] = true;
            experts[k] = e;
            weights[k] = scores[e];
        }

        // 5. weights: w_k = scale·s_k / Z (normalized, Z = 1e-20 + Σ_k s_k) or scale·s_k
        (bool normalize, float scale) = Weighting(c);
        if (normalize)
        {
            float sum = 1e-20f;
            for (int k = 0; k < K; k++)
                sum += weights[k];
            for (int k = 0; k < K; k++)
                weights[k] /= sum;
        }
        for (int k = 0; k < K; k++)
            weights[k] *= scale; // 1 where V2 normalized: exact
    }

    /// <summary>Step 5's form: V3 family normalizes (norm_topk_prob) then always scales; V2 remote code normalizes XOR scales.</summary>
    private static (bool Normalize, float Scale) Weighting(ModelConfig c)
    {
        bool xor = c.RouterNormalizesXorScales;
        bool normalize = c.NormTopkProb && (!xor || c.NumExpertsPerTok > 1);
        return (normalize, normalize && xor ? 1f : (float)c.RoutedScalingFactor);
    }

    /// <summary>
    /// Backward of step 5 for one token: scores [E] and its chosen experts [K], dweights [K] → dscores [E] (+=). The
    /// selection is a constant of the step; only the chosen scores get a gradient.
    /// </summary>
    public static void WeightsBackward(ModelConfig c, ReadOnlySpan<float> scores, ReadOnlySpan<int> experts, ReadOnlySpan<float> dweights,
                                       Span<float> dscores)
    {
        int K = c.NumExpertsPerTok;
        (bool normalize, float scale) = Weighting(c);
        if (normalize)
        {
            // w_k = scale·s_k / Z, Z = 1e-20 + Σ_j s_j over the chosen experts → ds_k = scale/Z·(dw_k − Σ_j dw_j s_j / Z)
            float z = 1e-20f, dot = 0f;
            for (int k = 0; k < K; k++)
                z += scores[experts[k]];
            for (int k = 0; k < K; k++)
                dot += dweights[k] * scores[experts[k]];
            for (int k = 0; k < K; k++)
                dscores[experts[k]] += scale / z * (dweights[k] - dot / z);
        }
        else
        {
            for (int k = 0; k < K; k++)
                dscores[experts[k]] += scale * dweights[k];
        }
    }

    /// <summary>Backward of step 1 for one token: scores [E], dscores [E] → dlogits [E] (overwritten): σ' = s(1 − s), or
    /// the softmax Jacobian s ⊙ (ds − ds·s).</summary>
    public static void AffinitiesBackward(ModelConfig c, ReadOnlySpan<float> scores, ReadOnlySpan<float> dscores, Span<float> dlogits)
    {
        int E = c.NRoutedExperts;
        if (c.ScoringFunc == ScoringFunc.Sigmoid)
        {
            for (int e = 0; e < E; e++)
                dlogits[e] = dscores[e] * scores[e] * (1f - scores[e]);
        }
        else
        {
            float dot = TensorPrimitives.Dot(dscores.Slice(0, E), scores.Slice(0, E));
            for (int e = 0; e < E; e++)
                dlogits[e] = scores[e] * (dscores[e] - dot);
        }
    }

    /// <summary>Index of the largest value not yet taken (ties: lowest index). -inf entries can still be chosen last.</summary>
    private static int ArgMaxExcluding(ReadOnlySpan<float> v, ReadOnlySpan<bool> taken)
    {
        int best = -1;
        float bestV = float.NegativeInfinity;
        for (int i = 0; i < v.Length; i++)
        {
            if (taken[i])
                continue;
            if (best < 0 || v[i] > bestV)
            {
                best = i;
                bestV = v[i];
            }
        }
        return best;
    }

    private static float SumTop2(ReadOnlySpan<float> v)
    {
        float a = float.NegativeInfinity, b = float.NegativeInfinity;
        foreach (float x in v)
        {
            if (x > a) { b = a; a = x; }
            else if (x > b) b = x;
        }
        return a + b;
    }
}
