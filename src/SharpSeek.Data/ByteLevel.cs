// GPT-2's byte-level alphabet, which DeepSeek-V3's tokenizer uses: every byte maps to one printable character,
// printable Latin-1 bytes to themselves and the rest (controls, space, 0x7F-0xA0, 0xAD) to U+0100 upwards,
// so that a token's bytes can be written as a JSON string. Reference: openai/gpt-2 src/encoder.py bytes_to_unicode
// and Hugging Face tokenizers src/pre_tokenizers/byte_level.rs.
using System.Text;

namespace SharpSeek.Data;

/// <summary>The byte-level (GPT-2) mapping between bytes and vocabulary characters.</summary>
public static class ByteLevel
{
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    /// <summary>The character that stands for <paramref name="b"/> in vocabulary strings.</summary>
    public static char ToChar(byte b) => ByteToChar[b];

    /// <summary>Encodes bytes as a vocabulary string.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        return string.Create(bytes.Length, bytes.ToArray(), static (chars, b) =>
        {
            for (int i = 0; i < b.Length; i++)
                chars[i] = ByteToChar[b[i]];
        });
    }

    /// <summary>Decodes a vocabulary string back to bytes; false if it has a character outside the alphabet.</summary>
    public static bool TryDecode(ReadOnlySpan<char> text, List<byte> output)
    {
        foreach (char c in text)
        {
            if (!CharToByte.TryGetValue(c, out byte b))
                return false;
            output.Add(b);
        }
        return true;
    }

    /// <summary>Decodes a vocabulary string back to bytes; throws <see cref="ArgumentException"/> for a character outside the alphabet.</summary>
    public static byte[] Decode(string text)
    {
        var bytes = new List<byte>(text.Length);
        if (!TryDecode(text, bytes))
            throw new ArgumentException($"'{text}' is not a byte-level vocabulary string", nameof(text));
        return bytes.ToArray();
    }

    /// <summary>The 256 bytes ordered by their vocabulary character, the order byte tokens have in GPT-2 and DeepSeek vocabularies.</summary>
    public static byte[] BytesInVocabularyOrder()
    {
        byte[] order = new byte[256];
        for (int b = 0; b < 256; b++)
            order[b] = (byte)b;
        Array.Sort(order, (x, y) => ByteToChar[x].CompareTo(ByteToChar[y]));
        return order;
    }

    /// <summary>UTF-8 encoding that replaces unpaired surrogates with U+FFFD, as Rust strings would hold them.</summary>
    internal static readonly Encoding Utf8 = new UTF8Encoding(false, throwOnInvalidBytes: false);

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var map = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++)
            map[ByteToChar[b]] = (byte)b;
        return map;
    }
}
