// Corpus text conventions and the per-source extractors (Austen lines, OSIS, Brown, fortunes) on small inputs.
using System.Text;
using SharpSeek.Data.Corpus;

namespace SharpSeek.Data.Tests;

public sealed class CorpusTextTests
{
    [Fact]
    public void NormalizeCleansControlsOverstrikesAndBlankLines()
    {
        string raw = "\r\n\r\nFirst line   \r\nse_\bc_\bo_\bn_\bd\a\n\n\n\n\tindented\u2028kept\n\f\n  \n";
        Assert.Equal("First line\nsecond\n\n\tindented\u2028kept", CorpusText.NormalizeDocument(raw));
    }

    [Fact]
    public void DocumentsJoinAndSplitBack()
    {
        string[] docs = ["One.\n\nTwo paragraphs.", "  \n", "Third\fdoc", "Last"];
        string text = CorpusText.JoinDocuments(docs);
        Assert.Equal("One.\n\nTwo paragraphs.\n\f\nThirddoc\n\f\nLast\n", text);
        Assert.Equal(new[] { "One.\n\nTwo paragraphs.", "Thirddoc", "Last" }, CorpusText.SplitDocuments(text));
    }

    [Fact]
    public void AustenLinesBecomeParagraphs()
    {
        string?[] lines = ["EMMA", "", "By Jane Austen", "", "", "CHAPTER I", "", "Emma Woodhouse, handsome, clever, and rich,", "  with a comfortable home", null, "FINIS"];
        Assert.Equal("EMMA\n\nBy Jane Austen\n\nCHAPTER I\n\nEmma Woodhouse, handsome, clever, and rich, with a comfortable home\n\nFINIS",
            AustenText.FromLines(lines));
    }

    [Fact]
    public void OsisVersesTitlesAndColophonsWithoutNotes()
    {
        const string xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <osis xmlns="http://www.bibletechnologies.net/2003/OSIS/namespace"><osisText>
            <header><work osisWork="KJV"><title>Header title, not text</title></work></header>
            <div type="book" osisID="Gen" canonical="true">
            <title type="main">THE FIRST BOOK OF MOSES</title>
            <chapter osisID="Gen.1"><title type="chapter">CHAPTER 1.</title>
            <verse osisID="Gen.1.1" sID="Gen.1.1"/><w lemma="strong:H07225">In the beginning</w> <w lemma="x">God</w> created.<note type="study">a note</note><verse eID="Gen.1.1"/>
            <verse osisID="Gen.1.2" sID="Gen.1.2"/><milestone type="x-p" marker="¶"/>And the <divineName>Lord</divineName>
              <transChange type="added">was</transChange> there.<verse eID="Gen.1.2"/>
            </chapter>
            <chapter osisID="Gen.2"><title type="chapter">CHAPTER 2.</title>
            <title type="psalm" canonical="true">A Psalm of David.</title>
            <verse osisID="Gen.2.1" sID="Gen.2.1"/><title type="acrostic" canonical="true"><foreign n="א">ALEPH.</foreign></title>Blessed <q who="Jesus" marker="">are they</q>.<verse eID="Gen.2.1"/>
            </chapter>
            </div>
            <div type="book" osisID="Rom"><chapter osisID="Rom.1"><verse osisID="Rom.1.1">Paul, a servant.</verse></chapter>
            <div type="colophon" osisID="Rom.c">Written to the <w>Romans</w>.</div></div>
            </osisText></osis>
            """;
        List<string> books = OsisText.ReadBooks(new MemoryStream(Encoding.UTF8.GetBytes(xml)));
        Assert.Equal(2, books.Count);
        Assert.Equal("""
            THE FIRST BOOK OF MOSES

            CHAPTER 1.
            In the beginning God created.
            And the LORD was there.

            CHAPTER 2.
            A Psalm of David.
            ALEPH.
            Blessed are they.
            """.ReplaceLineEndings("\n"), books[0]);
        Assert.Equal("Paul, a servant.\nWritten to the Romans.", books[1]);
    }

    [Fact]
    public void MalformedOsisNamesTheFile()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("bad.xml"), "<osis><div type=\"book\"><verse sID=\"a\"/>text</osis>");
        var e = Assert.Throws<InvalidDataException>(() => OsisText.ReadBooks(dir.File("bad.xml")));
        Assert.Contains("bad.xml", e.Message);
    }

    [Theory]
    [InlineData("The/at jury/nn said/vbd ./.", "The jury said.")]
    [InlineData("``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd ./.", "\"Only a handful\", the jury said.")]
    [InlineData("Mayor/nn-tl Ivan/np Allen/np Jr./np ./.", "Mayor Ivan Allen Jr.")]
    [InlineData("He/pps said/vbd --/-- no/rb --/-- and/cc left/vbd (/( quickly/rb )/) ;/. why/wrb ?/.", "He said--no--and left (quickly); why?")]
    [InlineData("'/' Tis/nn so/rb '/' ,/, she/pps said/vbd", "'Tis so', she said")]
    [InlineData("and/or/cc 1/2/cd mile/nn //in hour/nn", "and/or 1/2 mile / hour")]
    public void BrownSentencesDetokenise(string tagged, string expected)
    {
        Assert.Equal(expected, BrownText.Detokenize(BrownText.StripTags(tagged)));
    }

    [Fact]
    public void BrownParagraphsAndHeadlines()
    {
        string file = "\n\n\tThe/at jury/nn met/vbd ./.\nIt/pps adjourned/vbd ./.\n\n\nMerger/nn-hl proposed/vbn-hl \nHowever/wrb ,/, it/pps failed/vbd ./.\n\n\n\tEnd/nn ./.\n";
        Assert.Equal("The jury met. It adjourned.\n\nMerger proposed\n\nHowever, it failed.\n\nEnd.", BrownText.FromTagged(file));
    }

    [Fact]
    public void FortunesSplitOnPercentLines()
    {
        string file = "First fortune.\n\t\t-- Someone\n%\n%\nSecond\nfortune.   \n%\n  \n%\n100% sure\n";
        Assert.Equal(new[] { "First fortune.\n\t\t-- Someone", "Second\nfortune.", "100% sure" }, FortuneText.Split(file));
    }

    [Fact]
    public void DoubleEncodedUtf8IsRepaired()
    {
        Assert.Equal("don\u2019t", FortuneText.RepairDoubleEncoding("donâ\u0080\u0099t"));
        Assert.Equal("Here\u2019s", FortuneText.RepairDoubleEncoding("HereÃ¢Â\u0080Â\u0099s"));
        Assert.Equal("caf\u00e9 \u00a35", FortuneText.RepairDoubleEncoding("caf\u00e9 \u00a35"));
        Assert.Equal("plain", FortuneText.RepairDoubleEncoding("plain"));
    }
}
