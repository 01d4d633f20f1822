// Reader for R lazy-load databases: the NAME.rdx index and NAME.rdb data files that an installed R package
// keeps its data sets (data/Rdata.rdx) and functions in.
// Reference: R source src/main/serialize.c (R_lazyLoadDBfetch, R_decompress1/2/3) and
// src/library/base/R/lazyload.R (lazyLoadDBexec). The .rdx is a serialized list(variables, references,
// compressed), usually gzip-compressed as saveRDS writes it; each variable maps to c(offset, length) in the
// .rdb, where the entry is a 4-byte big-endian uncompressed length followed by a zlib stream (compressed = 1),
// or by a type byte ('0' stored, '1' zlib, '2' bzip2, 'Z' xz) and the data (compressed = 2 or 3).
using System.Buffers.Binary;
using System.IO.Compression;

namespace SharpSeek.Data.Corpus;

/// <summary>An R lazy-load database (.rdx index + .rdb data) opened for reading by variable name.</summary>
public sealed class RLazyLoadDatabase
{
    private readonly string _rdbPath;
    private readonly Dictionary<string, (long Offset, int Length)> _variables;
    private readonly int _compression;

    private RLazyLoadDatabase(string rdbPath, Dictionary<string, (long, int)> variables, int compression, IReadOnlyList<string> names)
    {
        _rdbPath = rdbPath;
        _variables = variables;
        _compression = compression;
        Names = names;
    }

    /// <summary>Variable names in index order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Opens the database whose index is <paramref name="rdxPath"/>; the data file is the same path with extension .rdb.</summary>
    public static RLazyLoadDatabase Open(string rdxPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(rdxPath);
        string rdbPath = Path.ChangeExtension(rdxPath, ".rdb");
        if (!File.Exists(rdbPath))
            throw new FileNotFoundException($"R lazy-load data file not found next to {rdxPath}", rdbPath);

        byte[] raw = File.ReadAllBytes(rdxPath);
        RObject index = RSerialization.Read(MaybeGunzip(raw, rdxPath), rdxPath);
        RObject variables = index["variables"] ?? throw new InvalidDataException($"{rdxPath}: index has no 'variables' entry");
        RObject? compressed = index["compressed"];
        int compression = compressed?.Integers is [int c, ..] ? c : compressed?.Doubles is [double d, ..] ? (int)d : 1;
        if (compression is < 0 or > 3)
            throw new InvalidDataException($"{rdxPath}: unknown compression code {compression}");

        string?[] names = variables.Names ?? throw new InvalidDataException($"{rdxPath}: 'variables' has no names");
        var map = new Dictionary<string, (long, int)>(StringComparer.Ordinal);
        var order = new List<string>();
        long rdbLength = new FileInfo(rdbPath).Length;
        for (int i = 0; i < names.Length; i++)
        {
            RObject entry = variables.Elements![i];
            (long offset, long length) = entry switch
            {
                { Integers: [int o, int l] } => ((long)o, (long)l),
                { Doubles: [double o, double l] } => ((long)o, (long)l),
                _ => throw new InvalidDataException($"{rdxPath}: variable '{names[i]}' has no (offset, length) pair"),
            };
            if (offset < 0 || length < 4 || length > int.MaxValue || offset + length > rdbLength)
                throw new InvalidDataException($"{rdxPath}: variable '{names[i]}' at ({offset}, {length}) lies outside {rdbPath} ({rdbLength} bytes)");
            string name = names[i] ?? throw new InvalidDataException($"{rdxPath}: variable {i} has an NA name");
            map[name] = (offset, (int)length);
            order.Add(name);
        }
        return new RLazyLoadDatabase(rdbPath, map, compression, order);
    }

    /// <summary>Reads and deserializes the variable called <paramref name="name"/>.</summary>
    public RObject Read(string name)
    {
        if (!_variables.TryGetValue(name, out (long Offset, int Length) at))
            throw new KeyNotFoundException($"{_rdbPath}: no variable '{name}' (has {string.Join(", ", Names)})");
        byte[] entry = new byte[at.Length];
        using (FileStream f = File.OpenRead(_rdbPath))
        {
            f.Position = at.Offset;
            f.ReadExactly(entry);
        }
        string where = $"{_rdbPath} variable '{name}'";
        return RSerialization.Read(Decompress(entry, where), where);
    }

    private byte[] Decompress(byte[] entry, string where)
    {
        int outLength = BinaryPrimitives.ReadInt32BigEndian(entry);
        if (outLength < 0)
            throw new InvalidDataException($"{where}: negative uncompressed length {outLength}");
        if (_compression == 0)
            return entry.AsSpan(4).ToArray();
        int start = 4;
        char method = '1';
        if (_compression >= 2)
        {
            if (entry.Length < 5)
                throw new InvalidDataException($"{where}: entry too short for its compression header");
            method = (char)entry[4];
            start = 5;
        }
        byte[] output = new byte[outLength];
        switch (method)
        {
            case '0':
                if (entry.Length - start != outLength)
                    throw new InvalidDataException($"{where}: stored entry has {entry.Length - start} bytes, header says {outLength}");
                entry.AsSpan(start).CopyTo(output);
                return output;
            case '1':
            {
                using var z = new ZLibStream(new MemoryStream(entry, start, entry.Length - start), CompressionMode.Decompress);
                int read = z.ReadAtLeast(output, outLength, throwOnEndOfStream: false);
                if (read != outLength || z.ReadByte() != -1)
                    throw new InvalidDataException($"{where}: zlib stream does not inflate to the {outLength} bytes its header says");
                return output;
            }
            default:
                throw new NotSupportedException($"{where}: compression method '{method}' (bzip2 or xz) is not supported; zlib is");
        }
    }

    private static byte[] MaybeGunzip(byte[] raw, string path)
    {
        if (raw.Length < 2 || raw[0] != 0x1f || raw[1] != 0x8b)
            return raw;
        try
        {
            using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            using var output = new MemoryStream();
            gz.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: bad gzip stream: {e.Message}", e);
        }
    }
}
