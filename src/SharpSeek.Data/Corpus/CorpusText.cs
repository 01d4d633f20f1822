// Plain-text conventions shared by every corpus file: UTF-8 without BOM, '\n' newlines, no trailing
// whitespace on a line, paragraphs separated by one blank line, and documents separated by a line that holds
// only a form feed (U+000C). Text is cleaned so that no document can contain that separator line.
using System.Text;

namespace SharpSeek.Data.Corpus;

/// <summary>Normalisation, document joining and splitting for the corpus text files.</summary>
public static class CorpusText
{
    /// <summary>The line that separates two documents in a corpus file (a lone form feed).</summary>
    public const string DocumentSeparator = "\f";

    /// <summary>UTF-8 without a byte-order mark, as every corpus file is written.</summary>
    public static readonly Encoding Utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    /// <summary>
    /// Normalises one document: CRLF and CR become LF, backspace overstrikes ("_\bx", "x\bx") keep the last
    /// character, other control characters except tab and newline are removed, trailing whitespace is cut from
    /// every line, runs of blank lines shrink to one, and blank lines at the start and end are dropped.
    /// </summary>
    public static string NormalizeDocument(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\r')
            {
                sb.Append('\n');
                if (i + 1 < text.Length && text[i + 1] == '\n')
                    i++;
            }
            else if (c == '\b')
            {
                if (sb.Length > 0 && sb[^1] != '\n')
                    sb.Length--; // overstrike: the character after the backspace replaces the one before
            }
            else if (c == '\n' || c == '\t' || !(char.IsControl(c) || c == '\uFEFF'))
            {
                sb.Append(c);
            }
        }

        var result = new StringBuilder(sb.Length);
        int blankRun = 0;
        foreach (string rawLine in sb.ToString().Split('\n')) // only '\n': U+2028 and friends stay inside a line
        {
            ReadOnlySpan<char> line = rawLine.AsSpan().TrimEnd();
            if (line.IsEmpty)
            {
                blankRun++;
                continue;
            }
            if (result.Length > 0)
                result.Append(blankRun > 0 ? "\n\n" : "\n");
            blankRun = 0;
            result.Append(line);
        }
        return result.ToString();
    }

    /// <summary>Joins documents into one corpus file's text: each normalised, empty ones dropped, separator lines between.</summary>
    public static string JoinDocuments(IEnumerable<string> documents)
    {
        ArgumentNullException.ThrowIfNull(documents);
        var sb = new StringBuilder();
        foreach (string document in documents)
        {
            string doc = NormalizeDocument(document);
            if (doc.Length == 0)
                continue;
            if (sb.Length > 0)
                sb.Append(DocumentSeparator).Append('\n');
            sb.Append(doc).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Splits a corpus file's text back into its documents (without their final newline).</summary>
    public static List<string> SplitDocuments(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var documents = new List<string>();
        int start = 0;
        while (start < text.Length)
        {
            int sep = text.IndexOf("\n" + DocumentSeparator + "\n", start, StringComparison.Ordinal);
            int end = sep < 0 ? text.Length : sep;
            string doc = text[start..end].TrimEnd('\n');
            if (doc.Length > 0)
                documents.Add(doc);
            if (sep < 0)
                break;
            start = sep + 3;
        }
        return documents;
    }

    /// <summary>Reads a corpus file and splits it into documents.</summary>
    public static List<string> ReadDocuments(string path) => SplitDocuments(File.ReadAllText(path, Utf8));

    /// <summary>Writes text as UTF-8 (no BOM) via a temporary file and a rename, so a reader never sees half a file.</summary>
    public static void WriteAtomically(string path, string text)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = full + ".tmp";
        File.WriteAllText(temp, text, Utf8);
        File.Move(temp, full, overwrite: true);
    }

    /// <summary>Joins hard-wrapped lines into paragraphs: a paragraph is a run of non-blank lines, each trimmed, joined by spaces.</summary>
    public static List<string> UnwrapParagraphs(IEnumerable<string?> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var paragraphs = new List<string>();
        var current = new StringBuilder();
        foreach (string? raw in lines)
        {
            string line = (raw ?? "").Trim();
            if (line.Length == 0)
            {
                if (current.Length > 0)
                {
                    paragraphs.Add(current.ToString());
                    current.Clear();
                }
                continue;
            }
            if (current.Length > 0)
                current.Append(' ');
            current.Append(line);
        }
        if (current.Length > 0)
            paragraphs.Add(current.ToString());
        return paragraphs;
    }
}
