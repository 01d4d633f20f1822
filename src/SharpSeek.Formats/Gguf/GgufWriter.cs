// GGUF writer (version 3, little-endian): metadata in insertion order, tensor infos with offsets aligned to
// general.alignment, padding, then each tensor's data streamed from a callback (so a large model is written
// row by row, never held whole). Saved atomically: a temporary file renamed over the target.
using System.Text;
using SharpSeek.Formats.Safetensors;

namespace SharpSeek.Formats.Gguf;

/// <summary>Builds a GGUF file.</summary>
public sealed class GgufWriter
{
    private readonly List<(string Key, GgufValue Value)> _kv = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    private sealed record PendingTensor(string Name, GgmlType Type, long[] Dims, long ByteLength, Action<Stream> Write);

    /// <param name="alignment">Tensor data alignment; written as general.alignment when not the default 32.</param>
    public GgufWriter(int alignment = GgufFile.DefaultAlignment)
    {
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentException($"alignment {alignment} is not a power of two", nameof(alignment));
        Alignment = alignment;
        if (alignment != GgufFile.DefaultAlignment)
            Add("general.alignment", GgufValue.UInt32((uint)alignment));
    }

    /// <summary>Tensor data alignment.</summary>
    public int Alignment { get; }

    /// <summary>Called after each tensor's data is written with (tensors done, tensor count, name).</summary>
    public Action<int, int, string>? Progress { get; set; }

    /// <summary>Tensors added so far (name, type, dims).</summary>
    public IEnumerable<(string Name, GgmlType Type, long[] Dims)> Tensors => _tensors.Select(t => (t.Name, t.Type, t.Dims));

    /// <summary>Adds a metadata key (each key once).</summary>
    public void Add(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (!_keys.Add(key))
            throw new ArgumentException($"metadata key '{key}' was already added", nameof(key));
        _kv.Add((key, value));
    }

    public void Add(string key, string value) => Add(key, GgufValue.String(value));
    public void Add(string key, uint value) => Add(key, GgufValue.UInt32(value));
    public void Add(string key, float value) => Add(key, GgufValue.Float32(value));
    public void Add(string key, bool value) => Add(key, GgufValue.Bool(value));

    /// <summary>
    /// Adds a tensor of ggml dims <paramref name="dims"/> (dims[0] = row length); <paramref name="write"/> is called
    /// once while saving and must write exactly the tensor's bytes.
    /// </summary>
    public void AddTensor(string name, GgmlType type, long[] dims, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(write);
        if (Encoding.UTF8.GetByteCount(name) >= GgufFile.MaxNameBytes)
            throw new ArgumentException($"tensor name '{name}' is longer than ggml's {GgufFile.MaxNameBytes - 1} bytes", nameof(name));
        if (dims.Length is 0 or > GgufFile.MaxDims || dims.Any(d => d < 0))
            throw new ArgumentException($"tensor '{name}' has bad dims {{{string.Join(", ", dims)}}}", nameof(dims));
        if (!_names.Add(name))
            throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        long bytes = GgmlTypes.RowBytes(type, dims[0]);
        for (int d = 1; d < dims.Length; d++)
            bytes = checked(bytes * dims[d]);
        _tensors.Add(new PendingTensor(name, type, (long[])dims.Clone(), bytes, write));
    }

    /// <summary>Writes the file to <paramref name="path"/> atomically.</summary>
    public void Save(string path) => AtomicFile.Write(path, WriteTo);

    /// <summary>Writes the whole file to a stream.</summary>
    public void WriteTo(Stream output)
    {
        var counted = new CountingStream(output);
        var w = new BinaryWriter(counted, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_kv.Count);
        foreach ((string key, GgufValue value) in _kv)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        long offset = 0;
        var offsets = new long[_tensors.Count];
        for (int i = 0; i < _tensors.Count; i++)
        {
            PendingTensor t = _tensors[i];
            WriteString(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (long d in t.Dims)
                w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offsets[i] = offset;
            offset = AlignUp(offset + t.ByteLength);
        }
        w.Flush();
        Pad(counted, AlignUp(counted.Count) - counted.Count);
        long dataStart = counted.Count;
        for (int i = 0; i < _tensors.Count; i++)
        {
            PendingTensor t = _tensors[i];
            long before = counted.Count;
            if (before - dataStart != offsets[i])
                throw new InvalidOperationException($"GGUF writer: tensor '{t.Name}' would start at {before - dataStart}, expected {offsets[i]}");
            t.Write(counted);
            long written = counted.Count - before;
            if (written != t.ByteLength)
                throw new InvalidOperationException($"GGUF writer: tensor '{t.Name}' wrote {written} bytes, expected {t.ByteLength}");
            Pad(counted, AlignUp(written) - written); // ggml pads the last tensor too: its reader reads whole padded blocks
            Progress?.Invoke(i + 1, _tensors.Count, t.Name);
        }
        counted.Flush();
    }

    private long AlignUp(long x) => (x + Alignment - 1) / Alignment * Alignment;

    private static void Pad(Stream s, long n)
    {
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        while (n > 0)
        {
            int k = (int)Math.Min(n, zeros.Length);
            s.Write(zeros[..k]);
            n -= k;
        }
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }

    private static void WriteValue(BinaryWriter w, GgufValue v)
    {
        switch (v.Value)
        {
            case byte x: w.Write(x); break;
            case sbyte x: w.Write(x); break;
            case ushort x: w.Write(x); break;
            case short x: w.Write(x); break;
            case uint x: w.Write(x); break;
            case int x: w.Write(x); break;
            case float x: w.Write(x); break;
            case bool x: w.Write((byte)(x ? 1 : 0)); break;
            case string x: WriteString(w, x); break;
            case ulong x: w.Write(x); break;
            case long x: w.Write(x); break;
            case double x: w.Write(x); break;
            case Array a:
                w.Write((uint)v.ElementType);
                w.Write((ulong)a.Length);
                foreach (object? e in a)
                    WriteValue(w, e switch
                    {
                        string s => GgufValue.String(s),
                        bool b => GgufValue.Bool(b),
                        _ => ScalarOf(e!),
                    });
                break;
            default:
                throw new InvalidOperationException($"cannot write a {v.Value.GetType().Name}");
        }
    }

    private static GgufValue ScalarOf(object e) => e switch
    {
        byte x => GgufValue.UInt8(x),
        sbyte x => GgufValue.Int8(x),
        ushort x => GgufValue.UInt16(x),
        short x => GgufValue.Int16(x),
        uint x => GgufValue.UInt32(x),
        int x => GgufValue.Int32(x),
        float x => GgufValue.Float32(x),
        ulong x => GgufValue.UInt64(x),
        long x => GgufValue.Int64(x),
        double x => GgufValue.Float64(x),
        _ => throw new InvalidOperationException($"cannot write a {e.GetType().Name}"),
    };

    /// <summary>Forwards writes and counts bytes (tensor sizes are checked against what the callbacks wrote).</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Count;
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            Count += count;
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Count += buffer.Length;
        }

        public override void WriteByte(byte value)
        {
            inner.WriteByte(value);
            Count++;
        }
    }
}
