// Token embedding (no scaling, spec §3.1): x[t] = E[ids[t]]; backward dE[ids[t]] += dx[t] in token order.
using SharpSeek.Tensors;

namespace SharpSeek.Training.Layers;

/// <summary>Embedding lookup and its backward pass.</summary>
public static class Embedding
{
    /// <summary>ids [N] → x [N, H] from table [V, H].</summary>
    public static void Forward(ReadOnlySpan<int> ids, F32Matrix table, Span<float> x)
    {
        int H = table.Cols;
        for (int t = 0; t < ids.Length; t++)
        {
            if ((uint)ids[t] >= (uint)table.Rows)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[t]} outside the vocabulary of {table.Rows}");
            table.Row(ids[t]).CopyTo(x.Slice(t * H, H));
        }
    }

    /// <summary>dx [N, H] → dtable [V, H] (+=).</summary>
    public static void Backward(ReadOnlySpan<int> ids, ReadOnlySpan<float> dx, Span<float> dtable, int H)
    {
        for (int t = 0; t < ids.Length; t++)
        {
            Span<float> row = dtable.Slice(ids[t] * H, H);
            System.Numerics.Tensors.TensorPrimitives.Add(row, dx.Slice(t * H, H), row);
        }
    }
}
