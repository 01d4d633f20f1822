// The whole corpus build on a miniature package tree laid out as scripts/build-corpus.sh unpacks it.
using SharpSeek.Data.Corpus;

namespace SharpSeek.Data.Tests;

public sealed class CorpusBuilderTests
{
    private static void WritePackages(string root)
    {
        string rdx = Path.Combine(root, CorpusBuilder.AustenIndex);
        Directory.CreateDirectory(Path.GetDirectoryName(rdx)!);
        XdrWriter.WriteLazyLoadDatabase(rdx, AustenText.Novels
            .Select(n => (n, new XdrWriter().Header().StrSxp(n.ToUpperInvariant(), "", "First line of", "the novel.").ToArray()))
            .ToList());

        string kjv = Path.Combine(root, CorpusBuilder.KjvXml);
        Directory.CreateDirectory(Path.GetDirectoryName(kjv)!);
        File.WriteAllText(kjv, """
            <osis><osisText><div type="book"><title type="main">GENESIS</title><chapter osisID="Gen.1">
            <verse sID="Gen.1.1"/>In the beginning.<verse eID="Gen.1.1"/></chapter></div></osisText></osis>
            """);

        string fortunes = Path.Combine(root, CorpusBuilder.FortuneDirectory);
        Directory.CreateDirectory(fortunes);
        File.WriteAllText(Path.Combine(fortunes, "riddles"), "Why?\n%\nBecause.\n%\n");
        File.WriteAllText(Path.Combine(fortunes, "art"), "Art is long.\n%\n");
        File.WriteAllText(Path.Combine(fortunes, "art.dat"), "\0\0\0\u0002binary index");
        File.WriteAllText(Path.Combine(fortunes, "ascii-art"), "  /\\_/\\\n ( o.o )\n%\n");
        File.CreateSymbolicLink(Path.Combine(fortunes, "art.u8"), "art");

        string brown = Path.Combine(root, CorpusBuilder.BrownDirectory);
        Directory.CreateDirectory(brown);
        File.WriteAllText(Path.Combine(brown, "cb02"), "\n\n\tSecond/od file/nn ./.\n");
        File.WriteAllText(Path.Combine(brown, "ca01"), "\n\n\tFirst/od file/nn ./.\n");
        File.WriteAllText(Path.Combine(brown, "README"), "not a sample");
    }

    [Fact]
    public void BuildsEveryFileDeterministically()
    {
        using var dir = new TempDirectory();
        WritePackages(dir.File("pkg"));
        List<CorpusFileReport> reports = CorpusBuilder.Build(dir.File("pkg"), dir.File("a"));
        CorpusBuilder.Build(dir.File("pkg"), dir.File("b"));

        Assert.Equal(CorpusBuilder.Files.Select(f => f.FileName).Order(), reports.Select(r => Path.GetFileName(r.Path)).Order());
        foreach (CorpusFile f in CorpusBuilder.Files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir.File("a"), f.FileName)), File.ReadAllBytes(Path.Combine(dir.File("b"), f.FileName)));

        string read(string name) => File.ReadAllText(Path.Combine(dir.File("a"), name));
        List<string> austen = CorpusText.SplitDocuments(read("austen-train.txt"));
        Assert.Equal(new[] { "SENSESENSIBILITY", "PRIDEPREJUDICE", "MANSFIELDPARK", "EMMA", "NORTHANGERABBEY" }, austen.Select(d => d.Split('\n')[0]));
        Assert.Equal("PERSUASION\n\nFirst line of the novel.\n", read("persuasion.txt"));
        Assert.Equal("GENESIS\n\nIn the beginning.\n", read("kjv.txt"));
        Assert.Equal(new[] { "Art is long.", "Why?", "Because." }, CorpusText.SplitDocuments(read("fortunes.txt")));
        Assert.Equal(new[] { "First file.", "Second file." }, CorpusText.SplitDocuments(read("brown.txt")));
        Assert.Empty(Directory.GetFiles(dir.File("a"), "*.tmp"));
    }

    [Fact]
    public void MissingInputsNameThePath()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.File("empty"));
        var e = Assert.Throws<FileNotFoundException>(() => CorpusBuilder.Build(dir.File("empty"), dir.File("out")));
        Assert.Contains("Rdata.rdx", e.Message);
    }
}
