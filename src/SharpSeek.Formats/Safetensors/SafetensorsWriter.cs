// safetensors writer: header JSON padded with spaces to 8 bytes, tensors in insertion order, written to a
// temporary file in the target directory and renamed into place (a crash never leaves a half-written file).
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using SharpSeek.Tensors;

namespace SharpSeek.Formats.Safetensors;

/// <summary>Collects tensors and writes them as one safetensors file, atomically.</summary>
public sealed class SafetensorsWriter
{
    private readonly List<Entry> _entries = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);

    private sealed record Entry(string Name, DType DType, long[] Shape, long ByteLength, Action<Stream> Write);

    /// <summary>Adds a string to <c>__metadata__</c>.</summary>
    public void AddMetadata(string key, string value) => _metadata[key] = value;

    /// <summary>Adds a tensor whose bytes are produced by <paramref name="write"/> (exactly ByteLength bytes).</summary>
    public void Add(string name, DType dtype, long[] shape, Action<Stream> write)
    {
        if (!_names.Add(name))
            throw new ArgumentException($"tensor '{name}' added twice");
        long n = 1;
        foreach (long d in shape)
            n = checked(n * d);
        _entries.Add(new Entry(name, dtype, shape, checked(n * DTypes.Size(dtype)), write));
    }

    /// <summary>Adds an F32 tensor.</summary>
    public void AddF32(string name, long[] shape, float[] values)
    {
        CheckCount(name, shape, values.Length);
        Add(name, DType.F32, shape, s => s.Write(MemoryMarshal.AsBytes(values.AsSpan())));
    }

    /// <summary>Adds a tensor as BF16 (rounded to nearest even).</summary>
    public void AddBf16(string name, long[] shape, float[] values)
    {
        CheckCount(name, shape, values.Length);
        Add(name, DType.BF16, shape, s =>
        {
            var buf = new ushort[Math.Min(values.Length, 1 << 16)];
            for (int i = 0; i < values.Length; i += buf.Length)
            {
                int n = Math.Min(buf.Length, values.Length - i);
                Bf16.FromFloat(values.AsSpan(i, n), buf);
                s.Write(MemoryMarshal.AsBytes(buf.AsSpan(0, n)));
            }
        });
    }

    /// <summary>Adds an I64 tensor.</summary>
    public void AddI64(string name, long[] shape, long[] values)
    {
        CheckCount(name, shape, values.Length);
        Add(name, DType.I64, shape, s => s.Write(MemoryMarshal.AsBytes(values.AsSpan())));
    }

    /// <summary>Adds raw bytes of the given dtype.</summary>
    public void AddBytes(string name, DType dtype, long[] shape, byte[] bytes)
    {
        Add(name, dtype, shape, s => s.Write(bytes));
        if (_entries[^1].ByteLength != bytes.Length)
            throw new ArgumentException($"tensor '{name}': {bytes.Length} bytes for {dtype} {SafetensorsFile.FormatShape(shape)}");
    }

    private static void CheckCount(string name, long[] shape, long count)
    {
        long n = 1;
        foreach (long d in shape)
            n *= d;
        if (n != count)
            throw new ArgumentException($"tensor '{name}': {count} values for shape {SafetensorsFile.FormatShape(shape)}");
    }

    /// <summary>The header bytes (JSON padded to a multiple of 8).</summary>
    public byte[] Header()
    {
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (_metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach ((string k, string v) in _metadata)
                    w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (Entry e in _entries)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", DTypes.Name(e.DType));
                w.WriteStartArray("shape");
                foreach (long d in e.Shape)
                    w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + e.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += e.ByteLength;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++)
            ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    /// <summary>Writes the file atomically (temporary file in the same directory, then rename).</summary>
    public void Save(string path)
    {
        AtomicFile.Write(path, stream =>
        {
            byte[] header = Header();
            stream.Write(BitConverter.GetBytes((ulong)header.Length));
            stream.Write(header);
            foreach (Entry e in _entries)
            {
                long before = stream.Position;
                e.Write(stream);
                if (stream.Position - before != e.ByteLength)
                    throw new InvalidOperationException($"tensor '{e.Name}' wrote {stream.Position - before} bytes, expected {e.ByteLength}");
            }
        });
    }
}

/// <summary>Writes a file through a temporary sibling and a rename, so readers never see a partial file.</summary>
public static class AtomicFile
{
    /// <summary>Runs <paramref name="write"/> on a temporary file next to <paramref name="path"/>, flushes it to disk, then renames it over <paramref name="path"/>.</summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        System.IO.Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Writes text atomically (UTF-8, no BOM).</summary>
    public static void WriteText(string path, string text) =>
        Write(path, fs => fs.Write(new UTF8Encoding(false).GetBytes(text)));
}
