// GPT-2 byte-level alphabet: every byte 0..255 is written as one printable char so that BPE vocabularies
// are plain strings (openai/gpt-2 encoder.py bytes_to_unicode; HF tokenizers pre_tokenizers/byte_level.rs).
namespace SharpSeek.Tokenizer;

internal static class ByteLevel
{
    /// <summary>ByteToChar[b] = the char that stands for byte b.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>CharToByte[c] = the byte char c stands for, or -1; indexed by c &lt; CharToByte.Length.</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar()
    {
        // printable Latin-1 bytes keep their code point; the other 68 bytes are numbered from U+0100 on
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
    public static void AppendTokenBytes(string token, List<byte> output)
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
    public static byte[] TokenBytes(string token)
    {
        var bytes = new List<byte>(token.Length);
        AppendTokenBytes(token, bytes);
        return bytes.ToArray();
    }
}
