// Minimal writer of R's XDR serialization (flags = type | object<<8 | attr<<9 | tag<<10 | levels<<12) and of
// lazy-load databases, to make test inputs for RSerialization and RLazyLoadDatabase.
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace SharpSeek.Data.Tests;

internal sealed class XdrWriter
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

    // Writes NAME.rdb (4-byte length + zlib per entry) and NAME.rdx (gzip'd index list) as R's makeLazyLoadDB does.
    public static void WriteLazyLoadDatabase(string rdxPath, IReadOnlyList<(string Name, byte[] Serialized)> variables)
    {
        using var rdb = new MemoryStream();
        var offsets = new List<(int Offset, int Length)>();
        byte[] len = new byte[4];
        foreach ((_, byte[] entry) in variables)
        {
            int start = (int)rdb.Length;
            BinaryPrimitives.WriteInt32BigEndian(len, entry.Length);
            rdb.Write(len);
            using (var z = new ZLibStream(rdb, CompressionLevel.Optimal, leaveOpen: true))
                z.Write(entry);
            offsets.Add((start, (int)rdb.Length - start));
        }
        File.WriteAllBytes(Path.ChangeExtension(rdxPath, ".rdb"), rdb.ToArray());

        // list(variables = list(NAME = c(offset, length), ...), references = list(), compressed = TRUE)
        var index = new XdrWriter().Header();
        index.Int(19 | (1 << 9)).Int(3);
        index.Int(19 | (1 << 9)).Int(variables.Count);
        foreach ((int o, int l) in offsets)
            index.Int(13).Int(2).Int(o).Int(l);
        index.Int(2 | (1 << 10)).Symbol("names").StrSxp(variables.Select(v => v.Name).ToArray()).Int(254);
        index.Int(19).Int(0);
        index.Int(10).Int(1).Int(1);
        index.Int(2 | (1 << 10)).Int(255 | (1 << 8)).StrSxp("variables", "references", "compressed").Int(254);
        using var gz = new GZipStream(File.Create(rdxPath), CompressionLevel.Optimal);
        gz.Write(index.ToArray());
    }
}