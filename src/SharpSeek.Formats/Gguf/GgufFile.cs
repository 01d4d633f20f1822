// GGUF reader (ggml docs/gguf.md, versions 2 and 3, little-endian): magic "GGUF", version, tensor count, metadata
// count, metadata key/values, tensor infos (name, dims in ggml order ne[0] = row length, type, offset), padding to
// general.alignment (default 32), then the tensor data. The file is memory-mapped and tensors are views into it.
// Every count, length, dimension and offset is checked against the bytes that remain before anything is read or
// allocated, as ggml src/gguf.cpp does; a malformed file raises InvalidDataException naming the file and the key or
// tensor, never an out-of-range read or a huge allocation.
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;

namespace SharpSeek.Formats.Gguf;

/// <summary>One tensor of a GGUF file.</summary>
/// <param name="Name">Tensor name (at most 63 bytes, as ggml allows).</param>
/// <param name="Type">Element type.</param>
/// <param name="Dims">ggml dimensions <c>ne</c>: Dims[0] is the row length (the reverse of the PyTorch shape).</param>
/// <param name="Offset">Start of the data relative to the data section.</param>
/// <param name="ByteLength">Bytes of data.</param>
public sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Dims, long Offset, long ByteLength)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Dims)
                n *= d;
            return n;
        }
    }

    /// <summary>The dims as "{a, b, c}" (llama.cpp's spelling of ne).</summary>
    public string DimsText => "{" + string.Join(", ", Dims) + "}";
}

/// <summary>A memory-mapped (or in-memory) GGUF file.</summary>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Alignment of tensor data when general.alignment is absent.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>ggml's GGML_MAX_NAME: names must be shorter than this.</summary>
    public const int MaxNameBytes = 64;

    /// <summary>ggml's GGML_MAX_DIMS.</summary>
    public const int MaxDims = 4;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private GCHandle _pin;
    private readonly byte* _base;
    private readonly Dictionary<string, GgufValue> _metadata;
    private readonly List<string> _keys;
    private readonly Dictionary<string, GgufTensorInfo> _byName;
    private bool _disposed;

    private GgufFile(string path, byte* basePtr, long length, MemoryMappedFile? map, MemoryMappedViewAccessor? view, GCHandle pin, Parsed p)
    {
        FilePath = path;
        _base = basePtr;
        Length = length;
        _map = map;
        _view = view;
        _pin = pin;
        Version = p.Version;
        Alignment = p.Alignment;
        DataOffset = p.DataOffset;
        _metadata = p.Metadata;
        _keys = p.Keys;
        Tensors = p.Tensors;
        _byName = p.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The file's path (or the name given to <see cref="FromMemory"/>).</summary>
    public string FilePath { get; }

    /// <summary>Bytes in the file.</summary>
    public long Length { get; }

    /// <summary>GGUF version (2 or 3).</summary>
    public uint Version { get; }

    /// <summary>Alignment of tensor data (general.alignment or 32).</summary>
    public int Alignment { get; }

    /// <summary>File offset of the data section.</summary>
    public long DataOffset { get; }

    /// <summary>Metadata by key.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata => _metadata;

    /// <summary>Metadata keys in file order.</summary>
    public IReadOnlyList<string> Keys => _keys;

    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Opens and validates a GGUF file, memory-mapped.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a well-formed GGUF file (the message names the file and the key or tensor).</exception>
    public static GgufFile Open(string path)
    {
        var fi = new FileInfo(path);
        if (!fi.Exists)
            throw new FileNotFoundException($"GGUF file not found: {path}", path);
        long length = fi.Length;
        if (length < 24)
            throw new InvalidDataException($"{path}: truncated: {length} bytes, a GGUF header needs 24");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            acquired = true;
            p += view.PointerOffset;
            Parsed parsed = Parse(p, length, path);
            return new GgufFile(path, p, length, map, view, default, parsed);
        }
        catch
        {
            if (acquired)
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>Parses a GGUF image held in memory (the array is copied into pinned memory); <paramref name="name"/> names it in errors.</summary>
    public static GgufFile FromMemory(ReadOnlySpan<byte> data, string name)
    {
        byte[] copy = GC.AllocateUninitializedArray<byte>(data.Length, pinned: true);
        data.CopyTo(copy);
        GCHandle pin = GCHandle.Alloc(copy, GCHandleType.Pinned);
        try
        {
            byte* p = (byte*)pin.AddrOfPinnedObject();
            if (data.Length < 24)
                throw new InvalidDataException($"{name}: truncated: {data.Length} bytes, a GGUF header needs 24");
            return new GgufFile(name, p, data.Length, null, null, pin, Parse(p, data.Length, name));
        }
        catch
        {
            pin.Free();
            throw;
        }
    }

    /// <summary>Whether the file has a tensor of this name.</summary>
    /// <summary>
    /// general.architecture of the file at <paramref name="path"/>, reading only its first metadata entry when that is the
    /// key (gguf-py and SharpSeek write it first), else the whole metadata through <see cref="Open"/>; null when absent.
    /// For telling model families apart before loading, without parsing a vocabulary twice.
    /// </summary>
    public static string? ReadArchitecture(string path)
    {
        const string Key = "general.architecture";
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 256))
        {
            var br = new BinaryReader(fs);
            // magic, version, tensor count, metadata count; then the first key and its value
            if (fs.Length >= 24 && br.ReadUInt32() == Magic && br.ReadUInt32() is 2 or 3)
            {
                fs.Position = 24;
                ulong keyLength = fs.Length - fs.Position >= 8 ? br.ReadUInt64() : 0;
                if (keyLength == (ulong)Key.Length && System.Text.Encoding.UTF8.GetString(br.ReadBytes(Key.Length)) == Key
                    && fs.Length - fs.Position >= 12 && br.ReadUInt32() == (uint)GgufValueType.String)
                {
                    ulong valueLength = br.ReadUInt64();
                    if (valueLength <= 256 && (ulong)(fs.Length - fs.Position) >= valueLength)
                        return System.Text.Encoding.UTF8.GetString(br.ReadBytes((int)valueLength));
                }
            }
        }
        using GgufFile f = Open(path);
        return f.GetString(Key);
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor of this name, or false.</summary>
    public bool TryGetTensor(string name, out GgufTensorInfo info) => _byName.TryGetValue(name, out info!);

    /// <summary>The tensor of this name; throws <see cref="InvalidDataException"/> naming the file when absent.</summary>
    public GgufTensorInfo Tensor(string name) =>
        _byName.TryGetValue(name, out GgufTensorInfo? t) ? t : throw new InvalidDataException($"{FilePath}: tensor '{name}' is missing");

    /// <summary>Pointer to a tensor's first byte (valid while this file is open).</summary>
    public byte* Pointer(GgufTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _base + DataOffset + t.Offset;
    }

    /// <summary>A tensor's bytes.</summary>
    public ReadOnlySpan<byte> Bytes(GgufTensorInfo t) => new(Pointer(t), checked((int)t.ByteLength));

    /// <summary>The value of a key, or null.</summary>
    public GgufValue? Get(string key) => _metadata.TryGetValue(key, out GgufValue? v) ? v : null;

    /// <summary>A string value; null when absent; <see cref="InvalidDataException"/> when of another type.</summary>
    public string? GetString(string key) => Get(key) is { } v ? v.Value as string ?? throw TypeError(key, v, "a string") : null;

    /// <summary>An integer value of any integer type, checked to fit [min, max]; null when absent.</summary>
    public long? GetInteger(string key, long min = long.MinValue, long max = long.MaxValue)
    {
        if (Get(key) is not { } v)
            return null;
        long x = v.AsInt64() ?? throw TypeError(key, v, "an integer");
        if (x < min || x > max)
            throw new InvalidDataException($"{FilePath}: key '{key}' is {x}; expected a value in [{min}, {max}]");
        return x;
    }

    /// <summary>A number (f32, f64 or an integer) as double; null when absent.</summary>
    public double? GetNumber(string key) => Get(key) is { } v ? v.AsDouble() ?? throw TypeError(key, v, "a number") : null;

    /// <summary>A bool value; null when absent.</summary>
    public bool? GetBool(string key) => Get(key) is { } v ? v.Value as bool? ?? throw TypeError(key, v, "a bool") : null;

    /// <summary>An array of strings; null when absent.</summary>
    public string[]? GetStringArray(string key) => Get(key) is { } v ? v.Value as string[] ?? throw TypeError(key, v, "an array of strings") : null;

    /// <summary>An array of integers (any integer element type that fits int); null when absent.</summary>
    public int[]? GetInt32Array(string key)
    {
        if (Get(key) is not { } v)
            return null;
        if (v.Value.GetType() == typeof(int[])) // exact: a uint[] also passes 'is int[]'
            return (int[])v.Value;
        if (v.Type != GgufValueType.Array || v.Value is string[] or bool[] or float[] or double[])
            throw TypeError(key, v, "an array of integers");
        var a = (Array)v.Value;
        var r = new int[a.Length];
        for (int k = 0; k < r.Length; k++)
        {
            long x = Convert.ToInt64(a.GetValue(k), System.Globalization.CultureInfo.InvariantCulture);
            if (x is < int.MinValue or > int.MaxValue)
                throw new InvalidDataException($"{FilePath}: key '{key}' element {k} is {x}, outside the int range");
            r[k] = (int)x;
        }
        return r;
    }

    private InvalidDataException TypeError(string key, GgufValue v, string expected) =>
        new($"{FilePath}: key '{key}' has type {(v.Type == GgufValueType.Array ? $"array of {v.ElementType}" : v.Type.ToString())}; expected {expected}");

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
        if (_pin.IsAllocated)
            _pin.Free();
    }

    private sealed class Parsed
    {
        public uint Version;
        public int Alignment;
        public long DataOffset;
        public Dictionary<string, GgufValue> Metadata = new(StringComparer.Ordinal);
        public List<string> Keys = [];
        public List<GgufTensorInfo> Tensors = [];
    }

    private static Parsed Parse(byte* p, long length, string path)
    {
        var r = new Reader(p, length, path);
        var result = new Parsed();
        uint magic = r.U32("magic");
        if (magic != Magic)
            throw new InvalidDataException($"{path}: not a GGUF file (magic 0x{magic:X8}, expected 0x{Magic:X8} \"GGUF\")");
        uint version = r.U32("version");
        if (version is 1)
            throw new InvalidDataException($"{path}: GGUF version 1 is not supported (versions 2 and 3 are)");
        if (version is not (2 or 3))
        {
            string hint = version == 0x03000000 || version == 0x02000000 ? " (a big-endian file; only little-endian is supported)" : "";
            throw new InvalidDataException($"{path}: unsupported GGUF version {version}{hint}");
        }
        result.Version = version;
        ulong nTensors = r.U64("tensor count");
        ulong nKv = r.U64("metadata count");
        // the smallest tensor info is 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes,
        // the smallest key/value 8 (key length) + 4 (type) + 1 (u8 value)
        if (nKv > (ulong)(r.Remaining / 13))
            throw new InvalidDataException($"{path}: metadata count {nKv} is larger than the {r.Remaining} bytes left could hold");
        if (nTensors > (ulong)(r.Remaining / 32))
            throw new InvalidDataException($"{path}: tensor count {nTensors} is larger than the {r.Remaining} bytes left could hold");

        for (ulong i = 0; i < nKv; i++)
        {
            string key = r.String($"metadata key {i}");
            var tag = (GgufValueType)r.U32($"type of key '{key}'");
            GgufValue value = ReadValue(ref r, tag, key);
            if (!result.Metadata.TryAdd(key, value))
                throw new InvalidDataException($"{path}: duplicate metadata key '{key}'");
            result.Keys.Add(key);
        }

        int alignment = DefaultAlignment;
        if (result.Metadata.TryGetValue("general.alignment", out GgufValue? av))
        {
            long a = av.AsInt64() ?? throw new InvalidDataException($"{path}: key 'general.alignment' has type {av.Type}; expected an integer");
            if (a <= 0 || a > 1 << 30 || (a & (a - 1)) != 0)
                throw new InvalidDataException($"{path}: key 'general.alignment' is {a}; expected a power of two");
            alignment = (int)a;
        }
        result.Alignment = alignment;

        var names = new HashSet<string>(StringComparer.Ordinal);
        var infos = new List<(string Name, uint Type, long[] Dims, ulong Offset)>((int)Math.Min(nTensors, 1 << 16));
        for (ulong i = 0; i < nTensors; i++)
        {
            string name = r.String($"name of tensor {i}");
            if (Encoding.UTF8.GetByteCount(name) >= MaxNameBytes)
                throw new InvalidDataException($"{path}: tensor {i} name '{name[..Math.Min(name.Length, 80)]}' is {Encoding.UTF8.GetByteCount(name)} bytes; ggml allows at most {MaxNameBytes - 1}");
            if (!names.Add(name))
                throw new InvalidDataException($"{path}: duplicate tensor '{name}'");
            uint nDims = r.U32($"dimension count of tensor '{name}'");
            if (nDims is 0 or > MaxDims)
                throw new InvalidDataException($"{path}: tensor '{name}' has {nDims} dimensions; expected 1 to {MaxDims}");
            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong ne = r.U64($"dimension {d} of tensor '{name}'");
                if (ne > long.MaxValue)
                    throw new InvalidDataException($"{path}: tensor '{name}' dimension {d} is {ne}, too large");
                dims[d] = (long)ne;
            }
            uint type = r.U32($"type of tensor '{name}'");
            ulong offset = r.U64($"offset of tensor '{name}'");
            infos.Add((name, type, dims, offset));
        }

        long dataOffset = AlignUp(r.Position, alignment);
        result.DataOffset = dataOffset;
        long dataBytes = length - Math.Min(dataOffset, length);
        foreach ((string name, uint type, long[] dims, ulong offset) in infos)
        {
            if (!GgmlTypes.TryGetLayout(type, out int bv, out int bb))
                throw new InvalidDataException($"{path}: tensor '{name}' has unknown type {type}");
            var gt = (GgmlType)type;
            if (dims[0] % bv != 0)
                throw new InvalidDataException($"{path}: tensor '{name}' has rows of {dims[0]} values, not a multiple of the {GgmlTypes.Name(gt)} block size {bv}");
            long bytes = dims[0] / bv * bb;
            for (int d = 1; d < dims.Length; d++)
            {
                if (dims[d] != 0 && bytes > long.MaxValue / dims[d])
                    throw new InvalidDataException($"{path}: tensor '{name}' dims {{{string.Join(", ", dims)}}} overflow the size of a file");
                bytes *= dims[d];
            }
            long elements = 1;
            foreach (long d in dims)
            {
                if (d != 0 && elements > long.MaxValue / d)
                    throw new InvalidDataException($"{path}: tensor '{name}' dims {{{string.Join(", ", dims)}}} overflow the element count");
                elements *= d;
            }
            if (offset % (ulong)alignment != 0)
                throw new InvalidDataException($"{path}: tensor '{name}' data offset {offset} is not a multiple of the alignment {alignment}");
            if (offset > (ulong)dataBytes || (ulong)bytes > (ulong)dataBytes - offset)
                throw new InvalidDataException($"{path}: tensor '{name}' data [{offset}, {offset + (ulong)bytes}) of the data section runs past the end of the file ({dataBytes} bytes of data)");
            result.Tensors.Add(new GgufTensorInfo(name, gt, dims, (long)offset, bytes));
        }
        GgufTensorInfo? prev = null;
        foreach (GgufTensorInfo t in result.Tensors.OrderBy(t => t.Offset).ThenBy(t => t.ByteLength))
        {
            if (prev is not null && t.Offset < prev.Offset + prev.ByteLength && t.ByteLength > 0 && prev.ByteLength > 0)
                throw new InvalidDataException($"{path}: tensor '{t.Name}' data at offset {t.Offset} overlaps tensor '{prev.Name}' [{prev.Offset}, {prev.Offset + prev.ByteLength})");
            if (prev is null || t.Offset + t.ByteLength > prev.Offset + prev.ByteLength)
                prev = t;
        }
        return result;
    }

    private static GgufValue ReadValue(ref Reader r, GgufValueType tag, string key)
    {
        switch (tag)
        {
            case GgufValueType.UInt8: return GgufValue.UInt8(r.Bytes(1, key)[0]);
            case GgufValueType.Int8: return GgufValue.Int8((sbyte)r.Bytes(1, key)[0]);
            case GgufValueType.UInt16: return GgufValue.UInt16(r.Read<ushort>(key));
            case GgufValueType.Int16: return GgufValue.Int16(r.Read<short>(key));
            case GgufValueType.UInt32: return GgufValue.UInt32(r.U32(key));
            case GgufValueType.Int32: return GgufValue.Int32(r.Read<int>(key));
            case GgufValueType.Float32: return GgufValue.Float32(r.Read<float>(key));
            case GgufValueType.Bool: return GgufValue.Bool(r.Bool(key));
            case GgufValueType.String: return GgufValue.String(r.String(key));
            case GgufValueType.UInt64: return GgufValue.UInt64(r.U64(key));
            case GgufValueType.Int64: return GgufValue.Int64(r.Read<long>(key));
            case GgufValueType.Float64: return GgufValue.Float64(r.Read<double>(key));
            case GgufValueType.Array:
                return ReadArray(ref r, key);
            default:
                throw new InvalidDataException($"{r.Path}: key '{key}' has unknown value type {(uint)tag}");
        }
    }

    private static GgufValue ReadArray(ref Reader r, string key)
    {
        var e = (GgufValueType)r.U32($"array type of key '{key}'");
        ulong n = r.U64($"array length of key '{key}'");
        int size = e switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
            GgufValueType.String => 8, // at least the length prefix
            GgufValueType.Array => throw new InvalidDataException($"{r.Path}: key '{key}' is an array of arrays, which GGUF readers do not support"),
            _ => throw new InvalidDataException($"{r.Path}: key '{key}' is an array of unknown type {(uint)e}"),
        };
        if (n > (ulong)(r.Remaining / size) || n > int.MaxValue / 2)
            throw new InvalidDataException($"{r.Path}: key '{key}' array length {n} is larger than the {r.Remaining} bytes left could hold");
        int count = (int)n;
        switch (e)
        {
            case GgufValueType.UInt8: return GgufValue.Array(r.Bytes(count, key).ToArray());
            case GgufValueType.Int8: return GgufValue.Array(MemoryMarshal.Cast<byte, sbyte>(r.Bytes(count, key)).ToArray());
            case GgufValueType.UInt16: return GgufValue.Array(r.Array<ushort>(count, key));
            case GgufValueType.Int16: return GgufValue.Array(r.Array<short>(count, key));
            case GgufValueType.UInt32: return GgufValue.Array(r.Array<uint>(count, key));
            case GgufValueType.Int32: return GgufValue.Array(r.Array<int>(count, key));
            case GgufValueType.Float32: return GgufValue.Array(r.Array<float>(count, key));
            case GgufValueType.UInt64: return GgufValue.Array(r.Array<ulong>(count, key));
            case GgufValueType.Int64: return GgufValue.Array(r.Array<long>(count, key));
            case GgufValueType.Float64: return GgufValue.Array(r.Array<double>(count, key));
            case GgufValueType.Bool:
            {
                var b = new bool[count];
                for (int i = 0; i < count; i++)
                    b[i] = r.Bool(key);
                return GgufValue.Array(b);
            }
            default:
            {
                var s = new string[count];
                for (int i = 0; i < count; i++)
                    s[i] = r.String($"element {i} of key '{key}'");
                return GgufValue.Array(s);
            }
        }
    }

    private static long AlignUp(long x, int alignment) => (x + alignment - 1) / alignment * alignment;

    /// <summary>A bounds-checked cursor over the file image.</summary>
    private ref struct Reader(byte* p, long length, string path)
    {
        private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        private long _pos;

        public readonly string Path => path;

        public readonly long Position => _pos;

        public readonly long Remaining => length - _pos;

        public ReadOnlySpan<byte> Bytes(long n, string what)
        {
            if (n < 0 || n > Remaining)
                throw new InvalidDataException($"{path}: truncated reading {what}: needs {n} bytes at offset {_pos}, {Remaining} left");
            if (n > int.MaxValue)
                throw new InvalidDataException($"{path}: {what} is {n} bytes, larger than this reader takes in one value");
            var s = new ReadOnlySpan<byte>(p + _pos, (int)n);
            _pos += n;
            return s;
        }

        public T Read<T>(string what) where T : unmanaged => MemoryMarshal.Read<T>(Bytes(sizeof(T), what));

        public T[] Array<T>(int count, string what) where T : unmanaged =>
            MemoryMarshal.Cast<byte, T>(Bytes((long)count * sizeof(T), what)).ToArray();

        public uint U32(string what) => Read<uint>(what);

        public ulong U64(string what) => Read<ulong>(what);

        public bool Bool(string what)
        {
            byte b = Bytes(1, what)[0];
            return b switch
            {
                0 => false,
                1 => true,
                _ => throw new InvalidDataException($"{path}: {what}: bool byte is {b}, expected 0 or 1"),
            };
        }

        public string String(string what)
        {
            ulong n = U64($"length of {what}");
            if (n > (ulong)Remaining || n > int.MaxValue)
                throw new InvalidDataException($"{path}: {what}: string length {n} runs past the end of the file ({Remaining} bytes left)");
            ReadOnlySpan<byte> s = Bytes((long)n, what);
            try
            {
                return Utf8.GetString(s);
            }
            catch (DecoderFallbackException)
            {
                throw new InvalidDataException($"{path}: {what}: string is not valid UTF-8");
            }
        }
    }
}
