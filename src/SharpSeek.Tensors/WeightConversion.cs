// Converts weight views between in-memory formats at load time (`--dtype`): fp32 (reference), bf16, FP8 e4m3
// with 128x128 block scales, Q8_0, Q4_K. Converted data lives in native buffers owned by the model.
using System.Runtime.InteropServices;

namespace SharpSeek.Tensors;

/// <summary>Format conversions of whole matrices.</summary>
public static unsafe class WeightConversion
{
    /// <summary>
    /// Returns <paramref name="m"/> in <paramref name="target"/> format (itself if already there). Q4_K needs a
    /// multiple of 256 columns and Q8_0 of 32: narrower matrices fall back to Q8_0, then BF16. Q4_K matrices of eight
    /// rows or more come back as <see cref="Q4KInterleavedMatrix"/> (the same blocks, repacked for the products).
    /// </summary>
    public static WeightMatrix Convert(WeightMatrix m, WeightFormat target, List<IDisposable> owners)
    {
        if (target == WeightFormat.Q4_K && m.Cols % Q4KMatrix.BlockValues != 0)
            target = WeightFormat.Q8_0;
        if (target == WeightFormat.Q8_0 && m.Cols % Q8_0Matrix.BlockValues != 0)
            target = WeightFormat.BF16;
        if (m.Format == target)
            return m;
        switch (target)
        {
            case WeightFormat.F32:
                return new F32Matrix(m.Rows, m.Cols, m.ToFloatArray());
            case WeightFormat.BF16:
            {
                var buf = new NativeBuffer((long)m.Rows * m.Cols * 2);
                owners.Add(buf);
                var row = new float[m.Cols];
                for (int r = 0; r < m.Rows; r++)
                {
                    m.ReadRow(r, row);
                    Bf16.FromFloat(row, new Span<ushort>(buf.Pointer + (long)r * m.Cols * 2, m.Cols));
                }
                return new Bf16Matrix((ushort*)buf.Pointer, m.Rows, m.Cols, buf);
            }
            case WeightFormat.Fp8Block:
                return QuantizeFp8(m, 128, 128, owners);
            case WeightFormat.Q8_0:
                return Q8_0Matrix.Quantize(m, owners);
            case WeightFormat.Q4_K:
                return m.Rows >= Q4KInterleavedMatrix.GroupRows ? Q4KInterleavedMatrix.Quantize(m, owners) : Q4KMatrix.Quantize(m, owners);
            default:
                throw new NotSupportedException($"conversion to {target} is not supported");
        }
    }

    /// <summary>Quantizes to E4M3 with one fp32 scale per block (scale = block max / 448, as DeepSeek's checkpoints).</summary>
    public static Fp8BlockMatrix QuantizeFp8(WeightMatrix m, int blockRows, int blockCols, List<IDisposable> owners)
    {
        int sr = (m.Rows + blockRows - 1) / blockRows, sc = (m.Cols + blockCols - 1) / blockCols;
        var data = new NativeBuffer((long)m.Rows * m.Cols);
        var scales = new NativeBuffer((long)sr * sc * 4);
        owners.Add(data);
        owners.Add(scales);
        float* s = (float*)scales.Pointer;
        var band = new float[(long)blockRows * m.Cols];
        for (int br = 0; br < sr; br++)
        {
            int r0 = br * blockRows, nr = Math.Min(blockRows, m.Rows - r0);
            for (int r = 0; r < nr; r++)
                m.ReadRow(r0 + r, band.AsSpan(r * m.Cols, m.Cols));
            for (int bc = 0; bc < sc; bc++)
            {
                int c0 = bc * blockCols, nc = Math.Min(blockCols, m.Cols - c0);
                float amax = 0;
                for (int r = 0; r < nr; r++)
                    for (int c = 0; c < nc; c++)
                        amax = Math.Max(amax, MathF.Abs(band[r * m.Cols + c0 + c]));
                float scale = amax > 0 ? amax / Fp8E4M3.MaxValue : 1f;
                s[br * sc + bc] = scale;
                for (int r = 0; r < nr; r++)
                    for (int c = 0; c < nc; c++)
                        data.Pointer[(long)(r0 + r) * m.Cols + c0 + c] = Fp8E4M3.FromFloat(band[r * m.Cols + c0 + c] / scale);
            }
        }
        return new Fp8BlockMatrix(data.Pointer, s, m.Rows, m.Cols, blockRows, blockCols, data);
    }

    /// <summary>Parses a --dtype name: f32, bf16, fp8, q8_0, q4_k.</summary>
    public static WeightFormat ParseName(string name) => name.ToLowerInvariant() switch
    {
        "f32" or "fp32" or "float32" => WeightFormat.F32,
        "bf16" or "bfloat16" => WeightFormat.BF16,
        "fp8" or "f8" or "f8_e4m3" or "e4m3" => WeightFormat.Fp8Block,
        "q8_0" or "q8" => WeightFormat.Q8_0,
        "q4_k" or "q4k" or "q4_k_m" => WeightFormat.Q4_K,
        _ => throw new ArgumentException($"--dtype '{name}' is not one of f32, bf16, fp8, q8_0, q4_k"),
    };
}
