// Fused row kernels (one pass where TensorPrimitives would take several): 512-bit where the hardware has it, else
// System.Numerics.Vector. Exponentials use FastExp on every element (a partial last vector is computed in a padded
// register), so a row gives the same bits wherever it is recomputed on the same machine.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpSeek.Tensors;

/// <summary>Softmax, cross-entropy and SwiGLU row kernels.</summary>
internal static unsafe class RowOps
{
    private static int W => Vector<float>.Count;

    private static bool V512 => Vector512.IsHardwareAccelerated;

    /// <summary>The first n floats at p in a zeroed vector (a row's tail, without reading past it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector LoadPartial<TVector>(float* p, int n) where TVector : unmanaged
    {
        TVector v = default;
        float* t = (float*)&v;
        for (int i = 0; i < n; i++)
            t[i] = p[i];
        return v;
    }

    /// <summary>Writes the first n lanes of v to p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePartial<TVector>(TVector v, float* p, int n) where TVector : unmanaged
    {
        float* t = (float*)&v;
        for (int i = 0; i < n; i++)
            p[i] = t[i];
    }

    /// <summary>v[i] ← e^(v[i] − m) for i &lt; n (Vector&lt;float&gt; lanes, then the tail); returns Σ e^(v[i] − m).</summary>
    private static float ExpShiftedInPlace(float* v, int n, float m)
    {
        int w = W, i;
        var mv = new Vector<float>(m);
        Vector<float> acc = Vector<float>.Zero;
        for (i = 0; i <= n - w; i += w)
        {
            Vector<float> e = FastExp.Exp(Vector.Load(v + i) - mv);
            Vector.Store(e, v + i);
            acc += e;
        }
        float s = Vector.Sum(acc);
        if (i < n)
        {
            Vector<float> e = FastExp.Exp(LoadPartial<Vector<float>>(v + i, n - i) - mv);
            StorePartial(e, v + i, n - i);
            float* t = (float*)&e;
            for (int j = 0; j < n - i; j++)
                s += t[j];
        }
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Lanes(int n) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MaxAcross(Vector512<float> v)
    {
        Vector256<float> a = Vector256.Max(v.GetLower(), v.GetUpper());
        Vector128<float> b = Vector128.Max(a.GetLower(), a.GetUpper());
        return MathF.Max(MathF.Max(b.GetElement(0), b.GetElement(1)), MathF.Max(b.GetElement(2), b.GetElement(3)));
    }

    private static void Softmax512(float* x, int n, float scale, out float max, out float sum)
    {
        int i = 0, rem;
        var sv = Vector512.Create(scale);
        var ninf = Vector512.Create(float.NegativeInfinity);
        Vector512<float> vm = ninf;
        for (; i <= n - 16; i += 16)
        {
            Vector512<float> v = Vector512.Load(x + i) * sv;
            v.Store(x + i);
            vm = Vector512.Max(vm, v);
        }
        rem = n - i;
        Vector512<float> live = Lanes(rem), tail = default;
        if (rem > 0)
        {
            tail = LoadPartial<Vector512<float>>(x + i, rem) * sv;
            vm = Vector512.Max(vm, Vector512.ConditionalSelect(live, tail, ninf));
        }
        float m = MaxAcross(vm);
        var mv = Vector512.Create(m);
        Vector512<float> acc = Vector512<float>.Zero;
        for (int j = 0; j < i; j += 16)
        {
            Vector512<float> e = FastExp.Exp(Vector512.Load(x + j) - mv);
            e.Store(x + j);
            acc += e;
        }
        if (rem > 0)
        {
            tail = FastExp.Exp(tail - mv) & live;
            acc += tail;
        }
        float s = Vector512.Sum(acc);
        var inv = Vector512.Create(1f / s);
        for (int j = 0; j < i; j += 16)
            (Vector512.Load(x + j) * inv).Store(x + j);
        if (rem > 0)
            StorePartial(tail * inv, x + i, rem);
        max = m;
        sum = s;
    }

    private static void SoftmaxAgain512(float* x, int n, float scale, float max, float sum)
    {
        int i = 0;
        var sv = Vector512.Create(scale);
        var mv = Vector512.Create(max);
        var inv = Vector512.Create(1f / sum);
        for (; i <= n - 16; i += 16)
            (FastExp.Exp(Vector512.Load(x + i) * sv - mv) * inv).Store(x + i);
        if (i < n)
            StorePartial(FastExp.Exp(LoadPartial<Vector512<float>>(x + i, n - i) * sv - mv) * inv, x + i, n - i);
    }

    private static void SoftmaxBackward512(float* p, float* dp, int n, float scale)
    {
        int i = 0;
        Vector512<float> acc = Vector512<float>.Zero;
        for (; i <= n - 16; i += 16)
            acc += Vector512.Load(p + i) * Vector512.Load(dp + i);
        int rem = n - i;
        Vector512<float> tp = default, td = default;
        if (rem > 0)
        {
            tp = LoadPartial<Vector512<float>>(p + i, rem);
            td = LoadPartial<Vector512<float>>(dp + i, rem);
            acc += tp * td;
        }
        var dv = Vector512.Create(Vector512.Sum(acc));
        var sv = Vector512.Create(scale);
        for (int j = 0; j < i; j += 16)
            (sv * Vector512.Load(p + j) * (Vector512.Load(dp + j) - dv)).Store(dp + j);
        if (rem > 0)
            StorePartial(sv * tp * (td - dv), dp + i, rem);
    }

    private static double CrossEntropy512(float* l, int n, int target, float scale)
    {
        int i = 0;
        var ninf = Vector512.Create(float.NegativeInfinity);
        Vector512<float> vm = ninf;
        for (; i <= n - 16; i += 16)
            vm = Vector512.Max(vm, Vector512.Load(l + i));
        int rem = n - i;
        Vector512<float> live = Lanes(rem), tail = default;
        if (rem > 0)
        {
            tail = LoadPartial<Vector512<float>>(l + i, rem);
            vm = Vector512.Max(vm, Vector512.ConditionalSelect(live, tail, ninf));
        }
        float m = MaxAcross(vm), picked = l[target];
        var mv = Vector512.Create(m);
        Vector512<float> acc = Vector512<float>.Zero;
        for (int j = 0; j < i; j += 16)
        {
            Vector512<float> e = FastExp.Exp(Vector512.Load(l + j) - mv);
            e.Store(l + j);
            acc += e;
        }
        if (rem > 0)
        {
            tail = FastExp.Exp(tail - mv) & live;
            acc += tail;
        }
        float s = Vector512.Sum(acc), k = scale / s;
        var kv = Vector512.Create(k);
        for (int j = 0; j < i; j += 16)
            (Vector512.Load(l + j) * kv).Store(l + j);
        if (rem > 0)
            StorePartial(tail * kv, l + i, rem);
        l[target] -= scale;
        return m + MathF.Log(s) - picked;
    }

    /// <summary>
    /// x[0..n) ← softmax(scale·x): v = scale·x, m = max v, e = exp(v − m), s = Σ e, x = e·(1/s). Returns m and s.
    /// </summary>
    public static void Softmax(float* x, int n, float scale, out float max, out float sum)
    {
        if (V512)
        {
            Softmax512(x, n, scale, out max, out sum);
            return;
        }
        int w = W, i = 0;
        var sv = new Vector<float>(scale);
        float m = float.NegativeInfinity;
        if (n >= w)
        {
            var vm = new Vector<float>(float.NegativeInfinity);
            for (; i <= n - w; i += w)
            {
                Vector<float> v = Vector.Load(x + i) * sv;
                Vector.Store(v, x + i);
                vm = Vector.Max(vm, v);
            }
            for (int j = 0; j < w; j++)
                m = MathF.Max(m, vm[j]);
        }
        for (; i < n; i++)
        {
            x[i] *= scale;
            m = MathF.Max(m, x[i]);
        }
        float s = ExpShiftedInPlace(x, n, m);
        var inv = new Vector<float>(1f / s);
        for (i = 0; i <= n - w; i += w)
            Vector.Store(Vector.Load(x + i) * inv, x + i);
        for (; i < n; i++)
            x[i] *= 1f / s;
        max = m;
        sum = s;
    }

    /// <summary>x[0..n) ← exp(scale·x − max)·(1/sum): the probabilities <see cref="Softmax"/> produced, bit for bit.</summary>
    public static void SoftmaxAgain(float* x, int n, float scale, float max, float sum)
    {
        if (V512)
        {
            SoftmaxAgain512(x, n, scale, max, sum);
            return;
        }
        int w = W, i = 0;
        var sv = new Vector<float>(scale);
        var mv = new Vector<float>(max);
        float invs = 1f / sum;
        var inv = new Vector<float>(invs);
        for (; i <= n - w; i += w)
            Vector.Store(FastExp.Exp(Vector.Load(x + i) * sv - mv) * inv, x + i);
        if (i < n)
        {
            // Softmax rounds scale·x to float before subtracting, as this does lane by lane
            Vector<float> e = FastExp.Exp(LoadPartial<Vector<float>>(x + i, n - i) * sv - mv);
            float* t = (float*)&e;
            for (int j = 0; j < n - i; j++)
                x[i + j] = t[j] * invs;
        }
    }

    /// <summary>
    /// One row of a key block in the attention backward: p[j] ← the probability <see cref="Softmax"/> gave (exp(scale·p[j] − max)/sum,
    /// same bits) for j &lt; live and 0 for live ≤ j &lt; n; dp[j] ← scale·p[j]·(dp[j] − d) (0 past live).
    /// </summary>
    public static void SoftmaxGrad(float* p, float* dp, int n, int live, float scale, float max, float sum, float d)
    {
        SoftmaxAgain(p, live, scale, max, sum);
        int i = 0;
        if (V512)
        {
            var sv = Vector512.Create(scale);
            var dv = Vector512.Create(d);
            for (; i <= live - 16; i += 16)
                (sv * Vector512.Load(p + i) * (Vector512.Load(dp + i) - dv)).Store(dp + i);
        }
        else
        {
            int w = W;
            var sv = new Vector<float>(scale);
            var dv = new Vector<float>(d);
            for (; i <= live - w; i += w)
                Vector.Store(sv * Vector.Load(p + i) * (Vector.Load(dp + i) - dv), dp + i);
        }
        for (; i < live; i++)
            dp[i] = scale * p[i] * (dp[i] - d);
        for (; i < n; i++)
        {
            p[i] = 0f;
            dp[i] = 0f;
        }
    }

    /// <summary>
    /// <see cref="SoftmaxGrad"/> over the R rows of a key block (row stride ld): row i has min(n, i + 1 + diag) live entries
    /// and the statistics stats[2i], stats[2i+1] and d[i].
    /// </summary>
    public static void SoftmaxGradBlock(float* p, float* dp, int ld, int R, int n, int diag, float scale, float* stats, float* d)
    {
        if (!V512 || n % 16 != 0)
        {
            for (int i = 0; i < R; i++)
                SoftmaxGrad(p + (long)i * ld, dp + (long)i * ld, n, Math.Min(n, i + 1 + diag), scale, stats[2 * i], stats[2 * i + 1], d[i]);
            return;
        }
        var sv = Vector512.Create(scale);
        for (int i = 0; i < R; i++)
        {
            float* pr = p + (long)i * ld, dr = dp + (long)i * ld;
            int live = Math.Min(n, i + 1 + diag);
            var mv = Vector512.Create(stats[2 * i]);
            var inv = Vector512.Create(1f / stats[2 * i + 1]);
            var dv = Vector512.Create(d[i]);
            for (int j = 0; j < n; j += 16)
            {
                // the same lane operations as SoftmaxAgain, so the same bits as Softmax gave
                Vector512<float> pj = FastExp.Exp(Vector512.Load(pr + j) * sv - mv) * inv;
                Vector512<float> gj = sv * pj * (Vector512.Load(dr + j) - dv);
                if (j + 16 > live)
                {
                    Vector512<float> keep = Lanes(live - j);
                    pj &= keep;
                    gj &= keep;
                }
                pj.Store(pr + j);
                gj.Store(dr + j);
            }
        }
    }

    /// <summary>dS = scale·P ⊙ (dP − Σ P·dP) over the n live entries of a row (dp overwritten).</summary>
    public static void SoftmaxBackward(float* p, float* dp, int n, float scale)
    {
        if (V512)
        {
            SoftmaxBackward512(p, dp, n, scale);
            return;
        }
        float dot = Vec.Dot(p, dp, n);
        int w = W, i = 0;
        var sv = new Vector<float>(scale);
        var dv = new Vector<float>(dot);
        for (; i <= n - w; i += w)
            Vector.Store(sv * Vector.Load(p + i) * (Vector.Load(dp + i) - dv), dp + i);
        for (; i < n; i++)
            dp[i] = scale * p[i] * (dp[i] - dot);
    }

    /// <summary>
    /// Cross-entropy of one row of logits l [n] with target y: returns logsumexp(l) − l[y] and replaces l by
    /// scale·(softmax(l) − onehot(y)).
    /// </summary>
    public static double CrossEntropy(float* l, int n, int target, float scale)
    {
        if (V512)
            return CrossEntropy512(l, n, target, scale);
        int w = W, i = 0;
        float m = float.NegativeInfinity;
        if (n >= w)
        {
            var vm = new Vector<float>(float.NegativeInfinity);
            for (; i <= n - w; i += w)
                vm = Vector.Max(vm, Vector.Load(l + i));
            for (int j = 0; j < w; j++)
                m = MathF.Max(m, vm[j]);
        }
        for (; i < n; i++)
            m = MathF.Max(m, l[i]);
        float picked = l[target];
        float s = ExpShiftedInPlace(l, n, m);
        float k = scale / s;
        var kv = new Vector<float>(k);
        for (i = 0; i <= n - w; i += w)
            Vector.Store(Vector.Load(l + i) * kv, l + i);
        for (; i < n; i++)
            l[i] *= k;
        l[target] -= scale;
        return m + MathF.Log(s) - picked;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> Sigmoid(Vector<float> g) => Vector<float>.One / (Vector<float>.One + FastExp.Exp(-g));

    /// <summary>h = (g·σ(g))·u over n values, σ(g) = 1/(1 + e^−g).</summary>
    public static void SiluMul(float* g, float* u, float* h, int n)
    {
        int w = W, i = 0;
        for (; i <= n - w; i += w)
        {
            Vector<float> gi = Vector.Load(g + i);
            Vector.Store(gi * Sigmoid(gi) * Vector.Load(u + i), h + i);
        }
        if (i < n)
        {
            Vector<float> gi = LoadPartial<Vector<float>>(g + i, n - i);
            StorePartial(gi * Sigmoid(gi) * LoadPartial<Vector<float>>(u + i, n - i), h + i, n - i);
        }
    }

    /// <summary>du = dh·g·σ(g), dg = dh·u·σ(g)·(1 + g·(1 − σ(g))) over n values.</summary>
    public static void SiluMulBackward(float* dh, float* g, float* u, float* dg, float* du, int n)
    {
        int w = W, i = 0;
        Vector<float> one = Vector<float>.One;
        for (; i <= n - w; i += w)
        {
            Vector<float> d = Vector.Load(dh + i), gi = Vector.Load(g + i), sig = Sigmoid(gi);
            Vector.Store(d * gi * sig, du + i);
            Vector.Store(d * Vector.Load(u + i) * sig * (one + gi * (one - sig)), dg + i);
        }
        if (i < n)
        {
            int r = n - i;
            Vector<float> d = LoadPartial<Vector<float>>(dh + i, r), gi = LoadPartial<Vector<float>>(g + i, r), sig = Sigmoid(gi);
            StorePartial(d * gi * sig, du + i, r);
            StorePartial(d * LoadPartial<Vector<float>>(u + i, r) * sig * (one + gi * (one - sig)), dg + i, r);
        }
    }
}
