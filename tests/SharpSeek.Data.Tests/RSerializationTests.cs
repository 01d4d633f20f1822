// R XDR serialization and lazy-load databases, on hand-made serialized bytes (layout from R's serialize.c).
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using SharpSeek.Data.Corpus;

namespace SharpSeek.Data.Tests;

public sealed class RSerializationTests
{
    // Minimal XDR writer: flags = type | object<<8 | attr<<9 | tag<<10 | levels<<12.
    private sealed class XdrWriter
    {
        private readonly MemoryStream _s = new();

        public XdrWriter Header(int version = 3)
        {
            _s.Write("X\n"u8);
            Int(version).Int(0x040201).Int(0x030500);
            if (version == 3)
                Int(5).Bytes("UTF-8"u8);
            return this;
        }

        public XdrWriter Int(int v)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteInt32BigEndian(b, v);
            _s.Write(b);
            return this;
        }

        public XdrWriter Bytes(ReadOnlySpan<byte> b)
        {
            _s.Write(b);
            return this;
        }

        public XdrWriter CharSxp(string? s, int levels = 1 << 6)
        {
            if (s is null)
                return Int(9).Int(-1);
            byte[] b = levels == 1 << 2 ? Encoding.Latin1.GetBytes(s) : Encoding.UTF8.GetBytes(s);
            return Int(9 | (levels << 12)).Int(b.Length).Bytes(b);
        }

        public XdrWriter StrSxp(params string?[] values)
        {
            Int(16).Int(values.Length);
            foreach (string? v in values)
                CharSxp(v, v is not null && v.Any(c => c > 127) ? 1 << 3 : 1 << 6);
            return this;
        }

        public XdrWriter Symbol(string name) => Int(1).CharSxp(name);

        public byte[] ToArray() => _s.ToArray();
    }

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
        using var rdb = new MemoryStream();
        var offsets = new List<(int Offset, int Length)>();
        byte[] len = new byte[4];
        foreach (byte[] entry in new[] { first, second })
        {
            int start = (int)rdb.Length;
            BinaryPrimitives.WriteInt32BigEndian(len, entry.Length);
            rdb.Write(len);
            using (var z = new ZLibStream(rdb, CompressionLevel.Optimal, leaveOpen: true))
                z.Write(entry);
            offsets.Add((start, (int)rdb.Length - start));
        }
        File.WriteAllBytes(dir.File("Rdata.rdb"), rdb.ToArray());

        // list(variables = list(first = c(o, l), second = c(o, l)), references = list(), compressed = TRUE)
        var index = new XdrWriter().Header();
        index.Int(19 | (1 << 9)).Int(3);
        index.Int(19 | (1 << 9)).Int(2);
        foreach ((int o, int l) in offsets)
            index.Int(13).Int(2).Int(o).Int(l);
        index.Int(2 | (1 << 10)).Symbol("names").StrSxp("first", "second").Int(254);
        index.Int(19).Int(0);
        index.Int(10).Int(1).Int(1);
        index.Int(2 | (1 << 10)).Int(255 | (1 << 8)).StrSxp("variables", "references", "compressed").Int(254);
        using (var gz = new GZipStream(File.Create(dir.File("Rdata.rdx")), CompressionLevel.Optimal))
            gz.Write(index.ToArray());

        RLazyLoadDatabase db = RLazyLoadDatabase.Open(dir.File("Rdata.rdx"));
        Assert.Equal(new[] { "first", "second" }, db.Names);
        Assert.Equal(new string?[] { "CHAPTER I", "", "It is a truth" }, db.Read("first").Strings);
        Assert.Equal(new string?[] { "THE END" }, db.Read("second").Strings);
        Assert.Throws<KeyNotFoundException>(() => db.Read("third"));
        Assert.Equal("CHAPTER I\n\nIt is a truth", AustenText.ReadNovel(db, "first"));
    }
}
