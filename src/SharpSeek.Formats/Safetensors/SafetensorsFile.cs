// safetensors reader: 8-byte little-endian header length N, N bytes of JSON, then the tensor bytes.
// The file is memory-mapped; tensors are views into the mapping. Every offset, size and count from the
// header is checked against the file before anything is read or allocated (docs/design.md).
using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace SharpSeek.Formats.Safetensors;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long DataStart, long ByteLength, string FilePath)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Shape)
                n *= d;
            return n;
        }
    }

    /// <summary>The shape as "[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>A memory-mapped safetensors file.</summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Header size limit (the reference implementation's is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly Dictionary<string, TensorInfo> _tensors;
    private bool _disposed;

    private SafetensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr, long length,
                            Dictionary<string, TensorInfo> tensors, Dictionary<string, string> metadata)
    {
        FilePath = path;
        _map = map;
        _view = view;
        _base = basePtr;
        Length = length;
        _tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file's path.</summary>
    public string FilePath { get; }

    /// <summary>File length in bytes.</summary>
    public long Length { get; }

    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>The <c>__metadata__</c> string map (empty if absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates a safetensors file; throws <see cref="InvalidDataException"/> naming the file and tensor.</summary>
    public static SafetensorsFile Open(string path)
    {
        var fi = new FileInfo(path);
        if (!fi.Exists)
            throw new FileNotFoundException($"safetensors file not found: {path}", path);
        long length = fi.Length;
        if (length < 8)
            throw new InvalidDataException($"{path}: truncated: {length} bytes, a safetensors file needs at least 8");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            p += view.PointerOffset;
            var span = new ReadOnlySpan<byte>(p, checked((int)Math.Min(length, int.MaxValue)));
            (Dictionary<string, TensorInfo> tensors, Dictionary<string, string> meta) = ParseHeader(path, span, length);
            return new SafetensorsFile(path, map, view, p, length, tensors, meta);
        }
        catch
        {
            if (view is not null)
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                view.Dispose();
            }
            map.Dispose();
            throw;
        }
    }

    /// <summary>Pointer to the first byte of a tensor; valid while this file is open.</summary>
    public byte* Pointer(TensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!ReferenceEquals(_tensors.GetValueOrDefault(t.Name), t))
            throw new ArgumentException($"tensor '{t.Name}' does not belong to {FilePath}");
        return _base + t.DataStart;
    }

    /// <summary>The raw bytes of a tensor.</summary>
    public ReadOnlySpan<byte> Bytes(TensorInfo t) => new(Pointer(t), checked((int)t.ByteLength));

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
    }

    /// <summary>Parses and validates the header of an in-memory file image (also used by tests and the fuzzer).</summary>
    internal static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ParseHeader(string path, ReadOnlySpan<byte> file, long fileLength)
    {
        ulong n = BitConverter.ToUInt64(file.Slice(0, 8));
        if (n > (ulong)(fileLength - 8))
            throw new InvalidDataException($"{path}: header length {n} is beyond the end of the file ({fileLength} bytes)");
        if (n > MaxHeaderBytes)
            throw new InvalidDataException($"{path}: header length {n} exceeds the {MaxHeaderBytes}-byte limit");
        if (n < 2)
            throw new InvalidDataException($"{path}: header length {n} is too small for a JSON object");
        long dataStart = 8 + (long)n, dataLength = fileLength - dataStart;
        if (!System.Text.Unicode.Utf8.IsValid(file.Slice(8, (int)n)))
            throw new InvalidDataException($"{path}: header is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(file.Slice(8, (int)n).ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: header is not a JSON object");
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            var meta = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new InvalidDataException($"{path}: __metadata__ is not an object");
                    foreach (JsonProperty m in prop.Value.EnumerateObject())
                        meta[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                if (tensors.ContainsKey(prop.Name))
                    throw new InvalidDataException($"{path}: tensor '{prop.Name}' appears twice in the header");
                tensors[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataStart, dataLength);
            }
            CheckOverlaps(path, tensors.Values);
            return (tensors, meta);
        }
    }

    private static TensorInfo ParseEntry(string path, string name, JsonElement e, long dataStart, long dataLength)
    {
        string Where() => $"{path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{Where()}: entry is not an object");
        if (!e.TryGetProperty("dtype", out JsonElement dt) || dt.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{Where()}: missing dtype");
        if (!DTypes.TryParse(dt.GetString()!, out DType dtype))
            throw new InvalidDataException($"{Where()}: unknown dtype '{dt.GetString()}'");
        if (!e.TryGetProperty("shape", out JsonElement sh) || sh.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{Where()}: missing shape");
        if (sh.GetArrayLength() > 8)
            throw new InvalidDataException($"{Where()}: shape has {sh.GetArrayLength()} dimensions (at most 8 supported)");
        var shape = new long[sh.GetArrayLength()];
        long count = 1;
        int k = 0;
        foreach (JsonElement d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw new InvalidDataException($"{Where()}: bad shape dimension {d.GetRawText()}");
            shape[k++] = v;
            try { count = checked(count * v); }
            catch (OverflowException) { throw new InvalidDataException($"{Where()}: shape [{string.Join(", ", shape.Take(k))}...] overflows"); }
        }
        if (!e.TryGetProperty("data_offsets", out JsonElement off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new InvalidDataException($"{Where()}: data_offsets must be [begin, end]");
        long begin = off[0].ValueKind == JsonValueKind.Number && off[0].TryGetInt64(out long b) ? b : -1;
        long end = off[1].ValueKind == JsonValueKind.Number && off[1].TryGetInt64(out long en) ? en : -1;
        if (begin < 0 || end < begin)
            throw new InvalidDataException($"{Where()}: bad data_offsets [{off[0].GetRawText()}, {off[1].GetRawText()}]");
        if (end > dataLength)
            throw new InvalidDataException($"{Where()}: data_offsets [{begin}, {end}] out of range: the data section has {dataLength} bytes");
        long expected;
        try { expected = checked(count * DTypes.Size(dtype)); }
        catch (OverflowException) { throw new InvalidDataException($"{Where()}: byte count overflows"); }
        if (end - begin != expected)
            throw new InvalidDataException($"{Where()}: {dtype} {FormatShape(shape)} needs {expected} bytes but data_offsets give {end - begin}");
        return new TensorInfo(name, dtype, shape, dataStart + begin, end - begin, path);
    }

    private static void CheckOverlaps(string path, IEnumerable<TensorInfo> tensors)
    {
        TensorInfo? prev = null;
        foreach (TensorInfo t in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.DataStart))
        {
            if (prev is not null && t.DataStart < prev.DataStart + prev.ByteLength)
                throw new InvalidDataException($"{path}: tensor '{t.Name}' overlaps tensor '{prev.Name}' in the data section");
            prev = t;
        }
    }

    internal static string FormatShape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
