// GGUF metadata values (gguf.h enum gguf_type): scalars, strings, and one-level arrays of them.
namespace SharpSeek.Formats.Gguf;

/// <summary>Type tag of a GGUF metadata value (the numeric id is what the file stores).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// One metadata value. Scalars are held boxed (byte, sbyte, ushort, short, uint, int, float, bool, string, ulong,
/// long, double); arrays as a typed CLR array of the element type (bool[] and string[] included).
/// </summary>
public sealed class GgufValue
{
    private GgufValue(GgufValueType type, GgufValueType elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        Value = value;
    }

    /// <summary>The value's type tag.</summary>
    public GgufValueType Type { get; }

    /// <summary>For arrays, the element type; otherwise equal to <see cref="Type"/>.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The boxed scalar or the typed array.</summary>
    public object Value { get; }

    /// <summary>Number of elements of an array (1 for a scalar).</summary>
    public int Count => Value is Array a ? a.Length : 1;

    public static GgufValue String(string v) => new(GgufValueType.String, GgufValueType.String, v ?? throw new ArgumentNullException(nameof(v)));
    public static GgufValue UInt8(byte v) => new(GgufValueType.UInt8, GgufValueType.UInt8, v);
    public static GgufValue Int8(sbyte v) => new(GgufValueType.Int8, GgufValueType.Int8, v);
    public static GgufValue UInt16(ushort v) => new(GgufValueType.UInt16, GgufValueType.UInt16, v);
    public static GgufValue Int16(short v) => new(GgufValueType.Int16, GgufValueType.Int16, v);
    public static GgufValue UInt32(uint v) => new(GgufValueType.UInt32, GgufValueType.UInt32, v);
    public static GgufValue Int32(int v) => new(GgufValueType.Int32, GgufValueType.Int32, v);
    public static GgufValue Float32(float v) => new(GgufValueType.Float32, GgufValueType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, GgufValueType.Bool, v);
    public static GgufValue UInt64(ulong v) => new(GgufValueType.UInt64, GgufValueType.UInt64, v);
    public static GgufValue Int64(long v) => new(GgufValueType.Int64, GgufValueType.Int64, v);
    public static GgufValue Float64(double v) => new(GgufValueType.Float64, GgufValueType.Float64, v);

    /// <summary>An array; <paramref name="values"/> must be an array of one of the scalar CLR types above.</summary>
    public static GgufValue Array(Array values)
    {
        ArgumentNullException.ThrowIfNull(values);
        // by the exact element type: the runtime lets an int[] pass as uint[] (and sbyte[] as byte[], long[] as ulong[]...),
        // so type patterns would tag a signed array as unsigned (llama.cpp refuses a UINT32 tokenizer.ggml.token_type)
        Type t = values.GetType().GetElementType()!;
        GgufValueType e =
            t == typeof(byte) ? GgufValueType.UInt8 :
            t == typeof(sbyte) ? GgufValueType.Int8 :
            t == typeof(ushort) ? GgufValueType.UInt16 :
            t == typeof(short) ? GgufValueType.Int16 :
            t == typeof(uint) ? GgufValueType.UInt32 :
            t == typeof(int) ? GgufValueType.Int32 :
            t == typeof(float) ? GgufValueType.Float32 :
            t == typeof(bool) ? GgufValueType.Bool :
            t == typeof(string) ? (((string[])values).Any(x => x is null) ? throw new ArgumentException("null string in array", nameof(values)) : GgufValueType.String) :
            t == typeof(ulong) ? GgufValueType.UInt64 :
            t == typeof(long) ? GgufValueType.Int64 :
            t == typeof(double) ? GgufValueType.Float64 :
            throw new ArgumentException($"{values.GetType().Name} is not a GGUF array type", nameof(values));
        return new GgufValue(GgufValueType.Array, e, values);
    }

    /// <summary>The value as a signed integer if it is an integer scalar (any width) that fits, else null.</summary>
    public long? AsInt64() => Value switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        ulong v => v <= long.MaxValue ? (long)v : null,
        long v => v,
        _ => null,
    };

    /// <summary>The value as a double if it is a number (integer or floating point), else null.</summary>
    public double? AsDouble() => Value switch
    {
        float f => f,
        double d => d,
        _ => AsInt64(),
    };

    public override string ToString() => Value switch
    {
        string s => s.Length > 60 ? $"\"{s[..57]}...\"" : $"\"{s}\"",
        Array a => $"[{ElementType} x {a.Length}]",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };
}
