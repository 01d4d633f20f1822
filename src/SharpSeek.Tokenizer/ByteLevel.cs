// GPT-2 byte-level alphabet: every byte 0..255 is written as one printable char so that BPE vocabularies
// are plain strings (openai/gpt-2 encoder.py bytes_to_unicode; HF tokenizers pre_tokenizers/byte_level.rs).
// Printable Latin-1 bytes keep their code point; the other 68 (controls, space, 0x7F-0xA0, 0xAD) are
// numbered from U+0100 on, so a space is 'Ġ' and a newline 'Ċ'.
namespace SharpSeek.Tokenizer;

/// <summary>The byte-level (GPT-2) mapping between bytes and the chars of vocabulary strings.</summary>
public static class ByteLevel
{
    /// <summary>ByteToChar[b] = the char that stands for byte b.</summary>
    internal static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>CharToByte[c] = the byte char c stands for, or -1; indexed by c &lt; CharToByte.Length.</summary>
    internal static readonly short[] CharToByte = BuildCharToByte();

    /// <summary>The char that stands for <paramref name="b"/> in vocabulary strings.</summary>
    public static char ToChar(byte b) => ByteToChar[b];

    /// <summary>Writes bytes as a vocabulary string, one char per byte.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        Span<char> chars = bytes.Length <= 256 ? stackalloc char[bytes.Length] : new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
            chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>The bytes of a vocabulary string.</summary>
    /// <exception cref="ArgumentException">A char is outside the byte alphabet.</exception>
    public static byte[] Decode(ReadOnlySpan<char> text)
    {
        byte[] bytes = new byte[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c >= CharToByte.Length || CharToByte[c] < 0)
                throw new ArgumentException($"'{text}' is not a byte-level vocabulary string (U+{(int)c:X4} at {i})", nameof(text));
            bytes[i] = (byte)CharToByte[c];
        }
        return bytes;
    }

    /// <summary>The 256 bytes ordered by their char, the order byte tokens have in GPT-2 and DeepSeek vocabularies
    /// ('!' first, 0xAD last).</summary>
    public static byte[] BytesInVocabularyOrder()
    {
        byte[] order = new byte[256];
        int n = 0;
        for (int c = 0; c < CharToByte.Length; c++)
        {
            if (CharToByte[c] >= 0)
                order[n++] = (byte)CharToByte[c];
        }
        return order;
    }

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var inverse = new short[256 + 68];
        Array.Fill(inverse, (short)-1);
        for (int b = 0; b < 256; b++)
            inverse[ByteToChar[b]] = (short)b;
        return inverse;
    }

    /// <summary>Appends the bytes a vocabulary token stands for: its byte-level chars mapped back, or, when
    /// any char is outside the byte alphabet (added tokens such as "&lt;｜User｜&gt;"), the token's own UTF-8
    /// bytes, as the ByteLevel decoder of HF tokenizers does.</summary>
    internal static void AppendTokenBytes(string token, List<byte> output)
    {
        foreach (char c in token)
        {
            if (c >= CharToByte.Length || CharToByte[c] < 0)
            {
                output.AddRange(System.Text.Encoding.UTF8.GetBytes(token));
                return;
            }
        }
        foreach (char c in token)
            output.Add((byte)CharToByte[c]);
    }

    /// <summary>The bytes of one token as <see cref="AppendTokenBytes"/> defines them.</summary>
    internal static byte[] TokenBytes(string token)
    {
        var bytes = new List<byte>(token.Length);
        AppendTokenBytes(token, bytes);
        return bytes.ToArray();
    }
}
