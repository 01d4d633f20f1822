// Verse text from an OSIS XML Bible (Debian bibledit-data: usr/share/bibledit/sources/kjv.xml, CrossWire's
// KJV with Strong's numbers). Reference: OSIS 2.1.1 user manual (verses as milestones <verse sID/>...<verse eID/>
// or as containers, <note> outside the text, <divineName> printed in small capitals).
// Output: one document per book; its title, then per chapter the chapter title and one verse per line, a blank
// line between chapters. Canonical titles (psalm superscriptions, acrostic letters) and colophons keep their
// own line; notes and markup attributes are dropped; divineName text is upper-cased ("LORD"), as printed.
using System.Text;
using System.Xml;

namespace SharpSeek.Data.Corpus;

/// <summary>Extracts plain verse text from OSIS XML.</summary>
public static class OsisText
{
    /// <summary>Reads an OSIS file and returns one document per book.</summary>
    public static List<string> ReadBooks(string path)
    {
        using FileStream stream = File.OpenRead(path);
        try
        {
            return ReadBooks(stream);
        }
        catch (XmlException e)
        {
            throw new InvalidDataException($"{path}: malformed OSIS XML: {e.Message}", e);
        }
    }

    /// <summary>Reads OSIS XML from a stream and returns one document per book.</summary>
    public static List<string> ReadBooks(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            IgnoreComments = true,
            IgnoreProcessingInstructions = true,
        };
        using XmlReader reader = XmlReader.Create(stream, settings);

        var books = new List<string>();
        var lines = new List<string>();
        var verse = new StringBuilder();
        var title = new StringBuilder();
        var colophon = new StringBuilder();
        bool inVerse = false;
        int titleDepth = 0, colophonDepth = 0, upperDepth = 0;
        // Element names whose end tag closes something we opened, matched by depth.
        var open = new Stack<string>();

        while (!reader.EOF)
        {
            if (reader.NodeType == XmlNodeType.Element)
            {
                string name = reader.LocalName;
                bool empty = reader.IsEmptyElement;
                if (name is "note" or "header")
                {
                    reader.Skip(); // notes and the work descriptions in the header are not part of the text
                    continue;
                }
                switch (name)
                {
                    case "div" when reader.GetAttribute("type") == "book":
                        FlushBook();
                        if (!empty)
                            open.Push("book");
                        reader.Read();
                        continue;
                    case "div" when reader.GetAttribute("type") == "colophon":
                        if (!empty)
                        {
                            colophonDepth++;
                            open.Push("colophon");
                        }
                        reader.Read();
                        continue;
                    case "chapter":
                        if (reader.GetAttribute("eID") is null && lines.Count > 0 && lines[^1].Length > 0)
                            lines.Add("");
                        break;
                    case "verse":
                        if (reader.GetAttribute("sID") is not null)
                        {
                            inVerse = true;
                            verse.Clear();
                        }
                        else if (reader.GetAttribute("eID") is not null)
                        {
                            EndVerse();
                        }
                        else if (!empty)
                        {
                            inVerse = true; // container verse: ends with its end tag
                            verse.Clear();
                            open.Push("verse");
                            reader.Read();
                            continue;
                        }
                        break;
                    case "title" when !empty:
                        titleDepth++;
                        if (titleDepth == 1)
                            title.Clear();
                        open.Push("title");
                        reader.Read();
                        continue;
                    case "divineName" when !empty:
                        upperDepth++;
                        open.Push("upper");
                        reader.Read();
                        continue;
                }
                if (!empty)
                    open.Push("");
            }
            else if (reader.NodeType == XmlNodeType.EndElement)
            {
                string what = open.Count > 0 ? open.Pop() : "";
                switch (what)
                {
                    case "book":
                        FlushBook();
                        break;
                    case "colophon":
                        colophonDepth--;
                        if (colophonDepth == 0)
                        {
                            AddLine(colophon.ToString());
                            colophon.Clear();
                        }
                        break;
                    case "verse":
                        EndVerse();
                        break;
                    case "title":
                        titleDepth--;
                        if (titleDepth == 0)
                            AddLine(title.ToString());
                        break;
                    case "upper":
                        upperDepth--;
                        break;
                }
            }
            else if (reader.NodeType is XmlNodeType.Text or XmlNodeType.CDATA or XmlNodeType.Whitespace or XmlNodeType.SignificantWhitespace)
            {
                string text = upperDepth > 0 ? reader.Value.ToUpperInvariant() : reader.Value;
                if (titleDepth > 0)
                    title.Append(text);
                else if (inVerse)
                    verse.Append(text);
                else if (colophonDepth > 0)
                    colophon.Append(text);
            }
            reader.Read();
        }
        FlushBook();
        return books;

        void EndVerse()
        {
            if (inVerse)
                AddLine(verse.ToString());
            inVerse = false;
            verse.Clear();
        }

        void AddLine(string text)
        {
            string line = CollapseWhitespace(text);
            if (line.Length > 0)
                lines.Add(line);
        }

        void FlushBook()
        {
            string doc = CorpusText.NormalizeDocument(string.Join('\n', lines));
            if (doc.Length > 0)
                books.Add(doc);
            lines.Clear();
        }
    }

    private static string CollapseWhitespace(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool space = false;
        foreach (char c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                space = sb.Length > 0;
                continue;
            }
            if (space)
                sb.Append(' ');
            space = false;
            sb.Append(c);
        }
        return sb.ToString();
    }
}
