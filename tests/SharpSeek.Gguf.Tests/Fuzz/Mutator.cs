// Seeded structure-blind mutations of a seed input, as AFL's havoc stage does (bit flips, interesting bytes and
// integers, block deletion, duplication and truncation), plus token-level mutations for JSON text (numbers replaced by
// boundary values, brackets and quotes inserted or removed). Case i of seed s is always the same input, so a failure
// reproduces from (target, seed, case) alone.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpSeek.Gguf.Tests.Fuzz;

internal sealed class Mutator(ulong seed)
{
    private ulong _state = seed;

    private static readonly long[] Interesting =
    [
        0, 1, -1, 2, 7, 8, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 1024, 4095, 4096, 32767, 32768, 65535, 65536,
        int.MaxValue, int.MinValue, (long)int.MaxValue + 1, uint.MaxValue, (long)uint.MaxValue + 1, long.MaxValue, long.MinValue,
        1L << 40, 1L << 62, 100_000_000, 1_000_000_007,
    ];

    private static readonly string[] JsonTokens =
    [
        "0", "-1", "1", "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807", "18446744073709551616",
        "1e309", "-1e309", "0.5", "1e-320", "NaN", "null", "true", "false", "\"\"", "[]", "{}", "[", "{", "]", "}", ",", ":",
        "\"", "\\", "\\u0000", "\\ud800", "\"x\"", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "1e5", "65536", "-0",
    ];

    public int Next(int n) => (int)(NextU64() % (ulong)n);

    private ulong NextU64()
    {
        // SplitMix64
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// One to four stacked binary mutations. <paramref name="hot"/> bytes at the start (a header: GGUF metadata and
    /// tensor infos, a safetensors JSON header) take three quarters of the positions.
    /// </summary>
    public byte[] MutateBinary(byte[] input, int hot)
    {
        var b = new List<byte>(input);
        int n = 1 + Next(4);
        for (int k = 0; k < n && b.Count > 0; k++)
        {
            int pos = Position(b.Count, hot);
            switch (Next(10))
            {
                case 0: // bit flip
                    b[pos] ^= (byte)(1 << Next(8));
                    break;
                case 1: // random byte
                    b[pos] = (byte)Next(256);
                    break;
                case 2: // interesting byte
                    b[pos] = (byte)Interesting[Next(Interesting.Length)];
                    break;
                case 3:
                case 4: // interesting u32 / u64 little-endian (counts, lengths, dims, offsets, types)
                {
                    int width = Next(2) == 0 ? 4 : 8;
                    Span<byte> v = stackalloc byte[8];
                    BinaryPrimitives.WriteInt64LittleEndian(v, Interesting[Next(Interesting.Length)] + (Next(4) == 0 ? Next(3) - 1 : 0));
                    for (int i = 0; i < width && pos + i < b.Count; i++)
                        b[pos + i] = v[i];
                    break;
                }
                case 5: // add or subtract a small amount from a u32 / u64 (an off-by-some length)
                {
                    if (pos + 8 > b.Count)
                        break;
                    byte[] w = b.GetRange(pos, 8).ToArray();
                    long x = BinaryPrimitives.ReadInt64LittleEndian(w) + (Next(33) - 16);
                    BinaryPrimitives.WriteInt64LittleEndian(w, x);
                    for (int i = 0; i < 8; i++)
                        b[pos + i] = w[i];
                    break;
                }
                case 6: // delete a block
                    b.RemoveRange(pos, Math.Min(b.Count - pos, 1 + Next(64)));
                    break;
                case 7: // duplicate a block
                {
                    int len = Math.Min(b.Count - pos, 1 + Next(64));
                    b.InsertRange(Position(b.Count, hot), b.GetRange(pos, len));
                    break;
                }
                case 8: // truncate
                    b.RemoveRange(pos, b.Count - pos);
                    break;
                default: // copy a block over another place
                {
                    int len = Math.Min(b.Count - pos, 1 + Next(32));
                    byte[] block = b.GetRange(pos, len).ToArray();
                    int to = Position(b.Count, hot);
                    for (int i = 0; i < len && to + i < b.Count; i++)
                        b[to + i] = block[i];
                    break;
                }
            }
        }
        return b.ToArray();
    }

    /// <summary>
    /// One to four stacked mutations of JSON: half of the time on the parsed tree (valid JSON with values replaced,
    /// removed, duplicated or moved: what reaches the semantic checks), else on the text (token-level or binary).
    /// </summary>
    public byte[] MutateJson(byte[] utf8)
    {
        if (Next(2) == 0)
            return MutateJsonTree(utf8);
        if (Next(3) == 0)
            return MutateBinary(utf8, utf8.Length);
        var s = new StringBuilder(Encoding.UTF8.GetString(utf8));
        int n = 1 + Next(4);
        for (int k = 0; k < n && s.Length > 0; k++)
        {
            int pos = Next(s.Length);
            switch (Next(5))
            {
                case 0: // replace a number (or the token at pos) with a boundary token
                {
                    int start = pos, end = pos;
                    while (start > 0 && IsNumberChar(s[start - 1]))
                        start--;
                    while (end < s.Length && IsNumberChar(s[end]))
                        end++;
                    s.Remove(start, end - start).Insert(start, JsonTokens[Next(JsonTokens.Length)]);
                    break;
                }
                case 1: // insert a token
                    s.Insert(pos, JsonTokens[Next(JsonTokens.Length)]);
                    break;
                case 2: // delete a span
                    s.Remove(pos, Math.Min(s.Length - pos, 1 + Next(16)));
                    break;
                case 3: // duplicate a span (repeated keys, repeated entries)
                {
                    int len = Math.Min(s.Length - pos, 1 + Next(200));
                    s.Insert(Next(s.Length), s.ToString(pos, len));
                    break;
                }
                default: // replace a string's contents with a long or odd one
                {
                    string odd = Next(3) switch { 0 => new string('a', 1 + Next(5000)), 1 => "\u0120\u0120", _ => "<\uff5cx\uff5c>" };
                    s.Insert(pos, odd);
                    break;
                }
            }
        }
        return Encoding.UTF8.GetBytes(s.ToString());
    }

    private byte[] MutateJsonTree(byte[] utf8)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(utf8);
        }
        catch (JsonException)
        {
            return MutateBinary(utf8, utf8.Length);
        }
        if (root is null)
            return utf8;
        int n = 1 + Next(4);
        for (int k = 0; k < n; k++)
        {
            var places = new List<(JsonNode Parent, string? Key, int Index)>();
            Collect(root, places);
            if (places.Count == 0)
                break;
            (JsonNode parent, string? key, int index) = places[Next(places.Count)];
            JsonNode? current = key is not null ? parent[key] : parent[index];
            switch (Next(5))
            {
                case 0:
                case 1: // a boundary value of any kind
                    Set(parent, key, index, Value(current));
                    break;
                case 2: // remove
                    if (parent is JsonObject o)
                        o.Remove(key!);
                    else
                        ((JsonArray)parent).RemoveAt(index);
                    break;
                case 3: // duplicate an array element, or copy another node here
                    if (parent is JsonArray a && current is not null)
                        a.Insert(index, current.DeepClone());
                    else
                        Set(parent, key, index, places[Next(places.Count)] is var p && (p.Key is not null ? p.Parent[p.Key] : p.Parent[p.Index]) is JsonNode other ? other.DeepClone() : null);
                    break;
                default: // a number nudged, a string grown
                    if (current is JsonValue v && v.TryGetValue(out long x))
                        Set(parent, key, index, JsonValue.Create(x + Next(5) - 2));
                    else if (current is JsonValue sv && sv.TryGetValue(out string? str))
                        Set(parent, key, index, JsonValue.Create(str + str));
                    break;
            }
        }
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    private static void Collect(JsonNode node, List<(JsonNode, string?, int)> places)
    {
        if (node is JsonObject o)
        {
            foreach (KeyValuePair<string, JsonNode?> kv in o.ToList())
            {
                places.Add((o, kv.Key, -1));
                if (kv.Value is not null)
                    Collect(kv.Value, places);
            }
        }
        else if (node is JsonArray a)
        {
            for (int i = 0; i < a.Count; i++)
            {
                places.Add((a, null, i));
                if (a[i] is JsonNode c)
                    Collect(c, places);
            }
        }
    }

    private static void Set(JsonNode parent, string? key, int index, JsonNode? value)
    {
        if (key is not null)
            parent[key] = value;
        else
            parent[index] = value;
    }

    private JsonNode? Value(JsonNode? current) => Next(9) switch
    {
        0 or 1 => JsonValue.Create(Interesting[Next(Interesting.Length)]),
        2 => JsonValue.Create(Next(2) == 0 ? -0.5 : 1e300),
        3 => JsonValue.Create(Next(3) switch { 0 => "", 1 => new string('x', 1 + Next(3000)), _ => "deepseek_v2" }),
        4 => JsonValue.Create(Next(2) == 0),
        5 => null,
        6 => new JsonArray(),
        7 => new JsonObject(),
        _ => current is JsonValue v && v.TryGetValue(out long x) ? JsonValue.Create(-x) : new JsonArray(JsonValue.Create(1), JsonValue.Create("a")),
    };

    private static bool IsNumberChar(char c) => c is >= '0' and <= '9' or '-' or '+' or '.' or 'e' or 'E';

    private int Position(int length, int hot) =>
        hot > 0 && hot < length && Next(4) != 0 ? Next(hot) : Next(length);
}
