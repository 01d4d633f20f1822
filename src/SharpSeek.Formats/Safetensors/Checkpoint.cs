// A Hugging Face checkpoint directory: model.safetensors, or shards listed by model.safetensors.index.json.
// Tensors are looked up by name across shards and exposed as typed, memory-mapped weight views.
using System.Runtime.InteropServices;
using System.Text.Json;
using SharpSeek.Tensors;

namespace SharpSeek.Formats.Safetensors;

/// <summary>All safetensors files of a checkpoint directory, memory-mapped, with tensors by name.</summary>
public sealed unsafe class Checkpoint : IDisposable
{
    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _byTensor;

    private Checkpoint(string directory, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> byTensor)
    {
        Directory = directory;
        _files = files;
        _byTensor = byTensor;
    }

    /// <summary>The checkpoint directory.</summary>
    public string Directory { get; }

    /// <summary>Every tensor name in the checkpoint.</summary>
    public IEnumerable<string> Names => _byTensor.Keys;

    /// <summary>Total bytes of all tensor data.</summary>
    public long TotalBytes => _byTensor.Sum(kv => kv.Value.Tensors[kv.Key].ByteLength);

    /// <summary>
    /// Opens <c>model.safetensors.index.json</c> (sharded) if present, else <c>model.safetensors</c>, else the single
    /// <c>*.safetensors</c> file of the directory.
    /// </summary>
    public static Checkpoint Open(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"checkpoint directory not found: {directory}");
        string index = Path.Combine(directory, "model.safetensors.index.json");
        if (File.Exists(index))
            return OpenSharded(directory, index);
        string single = Path.Combine(directory, "model.safetensors");
        if (!File.Exists(single))
        {
            string[] all = System.IO.Directory.GetFiles(directory, "*.safetensors");
            if (all.Length != 1)
                throw new FileNotFoundException($"{directory}: no model.safetensors or model.safetensors.index.json" +
                                                (all.Length > 1 ? $" ({all.Length} other .safetensors files, which is ambiguous)" : ""));
            single = all[0];
        }
        return FromFiles(directory, [single], weightMap: null);
    }

    /// <summary>Opens explicit files as one checkpoint (tensor names must be unique across them).</summary>
    public static Checkpoint FromFiles(string directory, IReadOnlyList<string> paths, IReadOnlyDictionary<string, string>? weightMap)
    {
        var files = new List<SafetensorsFile>();
        var byTensor = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (string p in paths)
            {
                SafetensorsFile f = SafetensorsFile.Open(p);
                files.Add(f);
                foreach (string name in f.Tensors.Keys)
                {
                    if (byTensor.TryGetValue(name, out SafetensorsFile? other))
                        throw new InvalidDataException($"{p}: tensor '{name}' is also in {other.FilePath}");
                    byTensor[name] = f;
                }
            }
            if (weightMap is not null)
            {
                foreach ((string name, string file) in weightMap)
                {
                    if (!byTensor.TryGetValue(name, out SafetensorsFile? f))
                        throw new InvalidDataException($"{Path.Combine(directory, file)}: tensor '{name}' listed in model.safetensors.index.json is missing");
                    if (Path.GetFileName(f.FilePath) != file)
                        throw new InvalidDataException($"{f.FilePath}: tensor '{name}' is listed in model.safetensors.index.json under {file}");
                }
                foreach (string name in byTensor.Keys)
                {
                    if (!weightMap.ContainsKey(name))
                        throw new InvalidDataException($"{byTensor[name].FilePath}: tensor '{name}' is not listed in model.safetensors.index.json");
                }
            }
            return new Checkpoint(directory, files, byTensor);
        }
        catch
        {
            foreach (SafetensorsFile f in files)
                f.Dispose();
            throw;
        }
    }

    private static Checkpoint OpenSharded(string directory, string indexPath)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out JsonElement wm) || wm.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{indexPath}: missing weight_map object");
            foreach (JsonProperty p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException($"{indexPath}: weight_map['{p.Name}'] is not a file name");
                string file = p.Value.GetString()!;
                if (file.Length == 0 || file != Path.GetFileName(file) || file is "." or "..")
                    throw new InvalidDataException($"{indexPath}: weight_map['{p.Name}'] = '{file}' is not a file name in the directory");
                map[p.Name] = file;
            }
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{indexPath}: not valid JSON: {e.Message}", e);
        }
        string[] shards = map.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(f => Path.Combine(directory, f)).ToArray();
        foreach (string s in shards)
        {
            if (!File.Exists(s))
                throw new FileNotFoundException($"{indexPath}: shard {Path.GetFileName(s)} is missing", s);
        }
        return FromFiles(directory, shards, map);
    }

    /// <summary>True if the checkpoint has a tensor of this name.</summary>
    public bool Contains(string name) => _byTensor.ContainsKey(name);

    /// <summary>The header entry of a tensor; throws naming the tensor if absent.</summary>
    public TensorInfo Info(string name) =>
        _byTensor.TryGetValue(name, out SafetensorsFile? f) ? f.Tensors[name]
            : throw new InvalidDataException($"{Directory}: tensor '{name}' is missing");

    /// <summary>Pointer to a tensor's bytes (valid while the checkpoint is open).</summary>
    public byte* Pointer(string name)
    {
        TensorInfo t = Info(name);
        return _byTensor[name].Pointer(t);
    }

    /// <summary>The raw bytes of a tensor (valid while the checkpoint is open).</summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        TensorInfo t = Info(name);
        return _byTensor[name].Bytes(t);
    }

    /// <summary>Reads a float tensor of any floating dtype into fp32, checking its shape.</summary>
    public float[] ReadFloats(string name, params long[] shape)
    {
        TensorInfo t = Info(name);
        CheckShape(t, shape);
        var dst = new float[t.ElementCount];
        byte* p = Pointer(name);
        switch (t.DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>(p, dst.Length).CopyTo(dst);
                break;
            case DType.BF16:
                Bf16.ToFloat(new ReadOnlySpan<ushort>(p, dst.Length), dst);
                break;
            case DType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(p, dst.Length), dst);
                break;
            case DType.F64:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (float)((double*)p)[i];
                break;
            case DType.F8_E4M3:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = Fp8E4M3.ToFloat(p[i]);
                break;
            default:
                throw new InvalidDataException($"{t.FilePath}: tensor '{name}' has dtype {t.DType}, expected a float type");
        }
        return dst;
    }

    /// <summary>Reads an integer tensor (I64, I32, I16, I8, U8...) as long values.</summary>
    public long[] ReadInt64(string name)
    {
        TensorInfo t = Info(name);
        var dst = new long[t.ElementCount];
        byte* p = Pointer(name);
        for (int i = 0; i < dst.Length; i++)
        {
            dst[i] = t.DType switch
            {
                DType.I64 => ((long*)p)[i],
                DType.I32 => ((int*)p)[i],
                DType.I16 => ((short*)p)[i],
                DType.I8 => ((sbyte*)p)[i],
                DType.U8 => p[i],
                DType.U16 => ((ushort*)p)[i],
                DType.U32 => ((uint*)p)[i],
                _ => throw new InvalidDataException($"{t.FilePath}: tensor '{name}' has dtype {t.DType}, expected an integer type"),
            };
        }
        return dst;
    }

    /// <summary>
    /// A weight view over a 2-D tensor in its stored format. FP8 E4M3 tensors need the sibling
    /// <c>NAME_scale_inv</c> (F32 [ceil(rows/blockRows), ceil(cols/blockCols)]); the format is decided by the
    /// stored dtype and the sibling's presence, never by the name.
    /// </summary>
    public WeightMatrix Matrix(string name, long rows, long cols, int blockRows = 128, int blockCols = 128)
    {
        TensorInfo t = Info(name);
        CheckShape(t, rows, cols);
        byte* p = Pointer(name);
        int r = checked((int)rows), c = checked((int)cols);
        string scaleName = name + "_scale_inv";
        switch (t.DType)
        {
            case DType.F32:
                return new F32Matrix((float*)p, r, c, this);
            case DType.BF16:
                return new Bf16Matrix((ushort*)p, r, c, this);
            case DType.F16:
                return new F16Matrix((Half*)p, r, c, this);
            case DType.F8_E4M3:
                if (!Contains(scaleName))
                    throw new InvalidDataException($"{t.FilePath}: tensor '{name}' is F8_E4M3 but '{scaleName}' is missing");
                TensorInfo s = Info(scaleName);
                long sr = (rows + blockRows - 1) / blockRows, sc = (cols + blockCols - 1) / blockCols;
                if (s.DType != DType.F32)
                    throw new InvalidDataException($"{s.FilePath}: tensor '{scaleName}' has dtype {s.DType}, expected F32");
                CheckShape(s, sr, sc);
                return new Fp8BlockMatrix(p, (float*)Pointer(scaleName), r, c, blockRows, blockCols, this);
            default:
                throw new InvalidDataException($"{t.FilePath}: tensor '{name}' has dtype {t.DType}, which is not a weight format");
        }
    }

    /// <summary>Throws naming the tensor unless its shape equals <paramref name="shape"/>.</summary>
    public static void CheckShape(TensorInfo t, params long[] shape)
    {
        if (!t.Shape.AsSpan().SequenceEqual(shape))
            throw new InvalidDataException($"{t.FilePath}: tensor '{t.Name}' has shape {t.ShapeText}, expected [{string.Join(", ", shape)}]");
    }

    public void Dispose()
    {
        foreach (SafetensorsFile f in _files)
            f.Dispose();
    }
}
