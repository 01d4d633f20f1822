// ggml tensor types as GGUF stores them (ggml/include/ggml.h enum ggml_type) with their block sizes
// (values per block) and block byte sizes (ggml/src/ggml.c type_traits). Every id with a known layout is
// listed so that any llama.cpp file can be parsed and checked; which ones can be multiplied is the loader's business.
namespace SharpSeek.Formats.Gguf;

/// <summary>A ggml tensor element type (the numeric id is what GGUF stores).</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
}

/// <summary>Block layout of each <see cref="GgmlType"/>.</summary>
public static class GgmlTypes
{
    /// <summary>(values per block, bytes per block), or false for an id this reader does not know.</summary>
    public static bool TryGetLayout(uint type, out int blockValues, out int blockBytes)
    {
        (blockValues, blockBytes) = (GgmlType)type switch
        {
            GgmlType.F32 => (1, 4),
            GgmlType.F16 => (1, 2),
            GgmlType.BF16 => (1, 2),
            GgmlType.F64 => (1, 8),
            GgmlType.I8 => (1, 1),
            GgmlType.I16 => (1, 2),
            GgmlType.I32 => (1, 4),
            GgmlType.I64 => (1, 8),
            GgmlType.Q4_0 => (32, 18),
            GgmlType.Q4_1 => (32, 20),
            GgmlType.Q5_0 => (32, 22),
            GgmlType.Q5_1 => (32, 24),
            GgmlType.Q8_0 => (32, 34),
            GgmlType.Q8_1 => (32, 36),
            GgmlType.IQ4_NL => (32, 18),
            GgmlType.MXFP4 => (32, 17),
            GgmlType.Q2_K => (256, 84),
            GgmlType.Q3_K => (256, 110),
            GgmlType.Q4_K => (256, 144),
            GgmlType.Q5_K => (256, 176),
            GgmlType.Q6_K => (256, 210),
            GgmlType.Q8_K => (256, 292),
            GgmlType.IQ2_XXS => (256, 66),
            GgmlType.IQ2_XS => (256, 74),
            GgmlType.IQ3_XXS => (256, 98),
            GgmlType.IQ1_S => (256, 50),
            GgmlType.IQ3_S => (256, 110),
            GgmlType.IQ2_S => (256, 82),
            GgmlType.IQ4_XS => (256, 136),
            GgmlType.IQ1_M => (256, 56),
            GgmlType.TQ1_0 => (256, 54),
            GgmlType.TQ2_0 => (256, 66),
            _ => (0, 0),
        };
        return blockValues > 0;
    }

    /// <summary>Values per block.</summary>
    public static int BlockValues(GgmlType type) =>
        TryGetLayout((uint)type, out int v, out _) ? v : throw new ArgumentOutOfRangeException(nameof(type), $"unknown ggml type {(uint)type}");

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgmlType type) =>
        TryGetLayout((uint)type, out _, out int b) ? b : throw new ArgumentOutOfRangeException(nameof(type), $"unknown ggml type {(uint)type}");

    /// <summary>Bytes of one row of <paramref name="values"/> elements (a whole number of blocks).</summary>
    public static long RowBytes(GgmlType type, long values)
    {
        int bv = BlockValues(type);
        if (values % bv != 0)
            throw new ArgumentException($"{type} rows need a multiple of {bv} values, got {values}");
        return values / bv * BlockBytes(type);
    }

    /// <summary>The llama.cpp spelling ("Q4_K", "BF16").</summary>
    public static string Name(GgmlType type) => Enum.IsDefined(type) ? type.ToString() : $"type {(uint)type}";
}
