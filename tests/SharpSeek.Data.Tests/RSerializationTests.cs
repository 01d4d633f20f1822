// R XDR serialization and lazy-load databases, on hand-made serialized bytes (layout from R's serialize.c).
using SharpSeek.Data.Corpus;

namespace SharpSeek.Data.Tests;

public sealed class RSerializationTests
{
    [Fact]
    public void ReadsCharacterVectorWithNaAndEncodings()
    {
        byte[] data = new XdrWriter().Header().StrSxp("EMMA", "", null, "naïve café").ToArray();
        RObject v = RSerialization.Read(data);
        Assert.Equal(RType.Character, v.Type);
        Assert.Equal(new string?[] { "EMMA", "", null, "naïve café" }, v.Strings);
    }

    [Fact]
    public void ReadsLatin1String()
    {
        byte[] data = new XdrWriter().Header().Int(16).Int(1).CharSxp("£5 façade", levels: 1 << 2).ToArray();
        Assert.Equal("£5 façade", RSerialization.Read(data).Strings![0]);
    }

    [Fact]
    public void ReadsNamedListWithAttributesAndSymbolReferences()
    {
        // list(a = 1:2, b = c(x = 0.5)) : VECSXP with attr pairlist(names = c("a", "b")); the inner double has
        // its own names attribute whose tag repeats the symbol "names" as REFSXP index 1.
        var w = new XdrWriter().Header(version: 2);
        w.Int(19 | (1 << 9)).Int(2);
        w.Int(13).Int(2).Int(1).Int(2);                                   // 1:2
        w.Int(14 | (1 << 9)).Int(1).Bytes(BitConverter.GetBytes(0.5).Reverse().ToArray());
        w.Int(2 | (1 << 10)).Symbol("names").StrSxp("x").Int(254);       // attr of the double
        w.Int(2 | (1 << 10)).Int(255 | (1 << 8)).StrSxp("a", "b").Int(254); // attr of the list, tag = REFSXP 1
        RObject v = RSerialization.Read(w.ToArray());

        Assert.Equal(RType.List, v.Type);
        Assert.Equal(new string?[] { "a", "b" }, v.Names);
        Assert.Equal(new[] { 1, 2 }, v["a"]!.Integers);
        Assert.Equal(new[] { 0.5 }, v["b"]!.Doubles);
        Assert.Equal(new string?[] { "x" }, v["b"]!.Names);
    }

    [Fact]
    public void TruncatedInputIsInvalidData()
    {
        byte[] data = new XdrWriter().Header().StrSxp("EMMA", "WOODHOUSE").ToArray();
        var e = Assert.Throws<InvalidDataException>(() => RSerialization.Read(data.AsSpan(0, data.Length - 3), "test.rds"));
        Assert.Contains("test.rds", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void OtherFormatsAreRefused()
    {
        Assert.Throws<NotSupportedException>(() => RSerialization.Read("A\n3\n"u8));
        Assert.Throws<InvalidDataException>(() => RSerialization.Read("PK\u0003\u0004"u8));
        Assert.Throws<NotSupportedException>(() => RSerialization.Read(new XdrWriter().Header().Int(3).ToArray())); // a closure
    }

    [Fact]
    public void LazyLoadDatabaseFetchesZlibEntries()
    {
        using var dir = new TempDirectory();
        byte[] first = new XdrWriter().Header().StrSxp("CHAPTER I", "", "It is a truth").ToArray();
        byte[] second = new XdrWriter().Header().StrSxp("THE END").ToArray();
        XdrWriter.WriteLazyLoadDatabase(dir.File("Rdata.rdx"), [("first", first), ("second", second)]);

        RLazyLoadDatabase db = RLazyLoadDatabase.Open(dir.File("Rdata.rdx"));
        Assert.Equal(new[] { "first", "second" }, db.Names);
        Assert.Equal(new string?[] { "CHAPTER I", "", "It is a truth" }, db.Read("first").Strings);
        Assert.Equal(new string?[] { "THE END" }, db.Read("second").Strings);
        Assert.Throws<KeyNotFoundException>(() => db.Read("third"));
        Assert.Equal("CHAPTER I\n\nIt is a truth", AustenText.ReadNovel(db, "first"));
    }
}
