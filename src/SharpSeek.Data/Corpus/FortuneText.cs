// fortune(6) cookie files (Debian fortunes, fortunes-min): plain text, one fortune after another, each ended
// by a line holding only '%'. Every fortune becomes one document; the .dat index files are not needed.
// A few fortunes were UTF-8 encoded two or three times ("donÃ¢ÂÂt"); those are decoded back.
using System.Text;

namespace SharpSeek.Data.Corpus;

/// <summary>Splits fortune cookie files into fortunes.</summary>
public static class FortuneText
{
    /// <summary>Returns the fortunes of one cookie file's text, each normalised, empty ones dropped.</summary>
    public static List<string> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var fortunes = new List<string>();
        var current = new List<string>();
        foreach (string line in text.Replace("\r\n", "\n").Split('\n'))
        {
            if (line == "%")
            {
                Flush();
                continue;
            }
            current.Add(line);
        }
        Flush();
        return fortunes;

        void Flush()
        {
            string fortune = CorpusText.NormalizeDocument(RepairDoubleEncoding(string.Join('\n', current)));
            if (fortune.Length > 0)
                fortunes.Add(fortune);
            current.Clear();
        }
    }

    private static readonly Encoding StrictUtf8 = new UTF8Encoding(false, throwOnInvalidBytes: true);

    /// <summary>
    /// Undoes UTF-8 that was decoded as Latin-1 and encoded again, as often as it was done: while every character
    /// is below U+0100, some are not ASCII, and the Latin-1 bytes form valid UTF-8, decode them as UTF-8.
    /// Genuine Latin-1 text ("caf\u00e9") is left alone because its bytes are not valid UTF-8.
    /// </summary>
    public static string RepairDoubleEncoding(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        for (int round = 0; round < 4; round++)
        {
            bool nonAscii = false;
            foreach (char c in text)
            {
                if (c > '\u00FF')
                    return text;
                nonAscii |= c > '\u007F';
            }
            if (!nonAscii)
                return text;
            try
            {
                text = StrictUtf8.GetString(Encoding.Latin1.GetBytes(text));
            }
            catch (DecoderFallbackException)
            {
                return text;
            }
        }
        return text;
    }
}
