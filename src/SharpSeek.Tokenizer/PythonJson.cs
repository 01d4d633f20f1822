// JSON text as Python's json.dumps(value, ensure_ascii=False) writes it, which DeepSeek's encoders (encoding_dsv32.py,
// encoding_dsv4.py) use for tool schemas and non-string tool arguments: ", " between items, ": " after keys, keys in
// their given order, non-ASCII characters as they are, and only '"', '\\' and control characters escaped.
// Numbers go through Python's int/float: integers keep their digits ("-0" becomes "0"), other numbers are written as
// float repr does (shortest round-trip digits, ".0" on integral values, exponent form "1e-05" / "1.5e+16" below 1e-4
// or from 1e16 on).
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SharpSeek.Tokenizer;

/// <summary>Writes JSON values the way Python's <c>json.dumps(value, ensure_ascii=False)</c> does.</summary>
public static class PythonJson
{
    /// <summary>The JSON text of <paramref name="value"/> as Python would dump it after <c>json.loads</c>.</summary>
    public static string Dumps(JsonElement value)
    {
        var sb = new StringBuilder();
        Write(sb, value);
        return sb.ToString();
    }

    /// <summary>A JSON string literal of <paramref name="text"/> (quotes included).</summary>
    public static string Quote(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sb = new StringBuilder(text.Length + 2);
        WriteString(sb, text);
        return sb.ToString();
    }

    /// <summary>Appends the dumped JSON text of <paramref name="value"/>.</summary>
    public static void Write(StringBuilder sb, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                sb.Append('{');
                bool first = true;
                foreach (JsonProperty p in value.EnumerateObject())
                {
                    if (!first)
                        sb.Append(", ");
                    WriteString(sb, p.Name);
                    sb.Append(": ");
                    Write(sb, p.Value);
                    first = false;
                }
                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                bool firstItem = true;
                foreach (JsonElement item in value.EnumerateArray())
                {
                    if (!firstItem)
                        sb.Append(", ");
                    Write(sb, item);
                    firstItem = false;
                }
                sb.Append(']');
                break;
            case JsonValueKind.String:
                WriteString(sb, value.GetString()!);
                break;
            case JsonValueKind.Number:
                sb.Append(Number(value.GetRawText()));
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            default:
                sb.Append("null");
                break;
        }
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20)
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    // json.loads makes an int of a literal without '.', 'e' or 'E' (any size), else a float
    internal static string Number(string raw)
    {
        if (raw.AsSpan().IndexOfAny('.', 'e', 'E') < 0)
            return raw == "-0" ? "0" : raw;
        double x = double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
        return FloatRepr(x);
    }

    /// <summary>Python's <c>repr(float)</c>: the shortest digits that round-trip, in fixed notation when the decimal
    /// exponent is in [-4, 16), else as d.ddde±XX.</summary>
    internal static string FloatRepr(double x)
    {
        if (double.IsNaN(x))
            return "NaN";
        if (double.IsInfinity(x))
            return x > 0 ? "Infinity" : "-Infinity";
        if (x == 0)
            return double.IsNegative(x) ? "-0.0" : "0.0";
        // "R" gives the shortest round-trip digits as d[.ddd][E±x]
        string shortest = Math.Abs(x).ToString("R", CultureInfo.InvariantCulture);
        // digits and decimal exponent from the shortest form
        int ePos = shortest.IndexOf('E');
        string mantissa = ePos < 0 ? shortest : shortest[..ePos];
        int exp10 = ePos < 0 ? 0 : int.Parse(shortest[(ePos + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        int dot = mantissa.IndexOf('.');
        string intPart = dot < 0 ? mantissa : mantissa[..dot];
        string fracPart = dot < 0 ? "" : mantissa[(dot + 1)..];
        string digits = (intPart + fracPart).TrimStart('0');
        int leadingZeros = (intPart + fracPart).Length - digits.Length;
        // value = 0.DIGITS * 10^decpt
        int decpt = intPart.Length + exp10 - leadingZeros;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
            digits = "0";
        var sb = new StringBuilder();
        if (x < 0)
            sb.Append('-');
        if (decpt > -4 && decpt <= 16)
        {
            if (decpt <= 0)
                sb.Append("0.").Append('0', -decpt).Append(digits);
            else if (decpt >= digits.Length)
                sb.Append(digits).Append('0', decpt - digits.Length).Append(".0");
            else
                sb.Append(digits, 0, decpt).Append('.').Append(digits, decpt, digits.Length - decpt);
        }
        else
        {
            sb.Append(digits[0]);
            if (digits.Length > 1)
                sb.Append('.').Append(digits, 1, digits.Length - 1);
            int e = decpt - 1;
            sb.Append('e').Append(e < 0 ? '-' : '+').Append(Math.Abs(e).ToString("00", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
