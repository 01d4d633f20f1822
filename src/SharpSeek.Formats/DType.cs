// Element types of stored tensors (safetensors dtype strings) and their sizes.
namespace SharpSeek.Formats;

/// <summary>Element type of a stored tensor.</summary>
public enum DType
{
    F64, F32, F16, BF16, F8_E4M3, F8_E5M2, F8_E8M0, I64, I32, I16, I8, U64, U32, U16, U8, BOOL,
}

/// <summary>Helpers for <see cref="DType"/>.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(DType t) => t switch
    {
        DType.F64 or DType.I64 or DType.U64 => 8,
        DType.F32 or DType.I32 or DType.U32 => 4,
        DType.F16 or DType.BF16 or DType.I16 or DType.U16 => 2,
        _ => 1,
    };

    /// <summary>Parses a safetensors dtype string ("F32", "BF16", "F8_E4M3", ...); false if unknown.</summary>
    public static bool TryParse(string s, out DType t) => Enum.TryParse(s, ignoreCase: false, out t) && Enum.IsDefined(t);

    /// <summary>The safetensors spelling.</summary>
    public static string Name(DType t) => t.ToString();
}
