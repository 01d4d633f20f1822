using System.Text;
using SharpSeek.Formats;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model;
using SharpSeek.Tensors;
using SharpSeek.Tests;

namespace SharpSeek.Formats.Tests;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpseek-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteRaw(string header, int dataBytes, string name = "x.safetensors", long? declaredLength = null)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        string path = Path.Combine(_dir, name);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes((ulong)(declaredLength ?? h.Length)));
        fs.Write(h);
        fs.Write(new byte[dataBytes]);
        return path;
    }

    private static InvalidDataException Bad(string path) => Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path).Dispose());

    [Fact]
    public void Writes_and_reads_back_every_dtype()
    {
        var w = new SafetensorsWriter();
        w.AddMetadata("format", "pt");
        w.AddF32("a", [2, 3], [1, 2, 3, 4, 5, 6]);
        w.AddBf16("b", [3], [1.5f, -2f, 3.25f]);
        w.AddI64("c", [2], [7, -9]);
        w.AddBytes("d", DType.F8_E4M3, [2], [0x38, 0xB8]); // 1.0, -1.0
        w.AddBytes("e", DType.F16, [1], BitConverter.GetBytes((Half)0.5f));
        w.AddBytes("f", DType.I32, [1], BitConverter.GetBytes(-3));
        string p = Path.Combine(_dir, "model.safetensors");
        w.Save(p);
        using Checkpoint c = Checkpoint.Open(_dir);
        Assert.Equal([1f, 2, 3, 4, 5, 6], c.ReadFloats("a", 2, 3));
        Assert.Equal([1.5f, -2f, 3.25f], c.ReadFloats("b", 3));
        Assert.Equal([7L, -9], c.ReadInt64("c"));
        Assert.Equal([1f, -1f], c.ReadFloats("d", 2));
        Assert.Equal([0.5f], c.ReadFloats("e", 1));
        Assert.Equal([-3L], c.ReadInt64("f"));
        using SafetensorsFile f = SafetensorsFile.Open(p);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void Truncated_file_is_rejected()
    {
        string p = Path.Combine(_dir, "t.safetensors");
        File.WriteAllBytes(p, [1, 2, 3]);
        Assert.Contains("t.safetensors", Bad(p).Message);
        File.WriteAllBytes(p, []);
        Assert.Contains("truncated", Bad(p).Message);
    }

    [Fact]
    public void Header_length_beyond_file_is_rejected()
    {
        string p = WriteRaw("{}", 0, declaredLength: 1L << 40);
        Assert.Contains("beyond the end", Bad(p).Message);
        p = WriteRaw("{}", 0, declaredLength: ulong.MaxValue > long.MaxValue ? long.MaxValue : 0);
        Bad(p);
    }

    [Fact]
    public void Bad_json_is_rejected() => Assert.Contains("JSON", Bad(WriteRaw("{\"a\": [", 0)).Message);

    [Fact]
    public void Out_of_range_offsets_are_rejected()
    {
        string p = WriteRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        var e = Bad(p);
        Assert.Contains("'w'", e.Message);
        Assert.Contains("out of range", e.Message);
        Bad(WriteRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8));
        Bad(WriteRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8));
    }

    [Fact]
    public void Overlapping_offsets_are_rejected()
    {
        string p = WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        Assert.Contains("overlaps", Bad(p).Message);
    }

    [Fact]
    public void Byte_count_mismatch_is_rejected()
    {
        var e = Bad(WriteRaw("{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8));
        Assert.Contains("needs 6 bytes", e.Message);
        Assert.Contains("'w'", e.Message);
    }

    [Fact]
    public void Huge_shape_does_not_allocate()
    {
        var e = Bad(WriteRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 8));
        Assert.Contains("'w'", e.Message);
    }

    [Fact]
    public void Unknown_dtype_is_rejected() =>
        Assert.Contains("unknown dtype", Bad(WriteRaw("{\"w\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1)).Message);

    [Fact]
    public void Mutated_headers_fail_only_with_InvalidDataException()
    {
        var w = new SafetensorsWriter();
        w.AddF32("layer.weight", [3, 4], Enumerable.Range(0, 12).Select(i => (float)i).ToArray());
        w.AddI64("ids", [5], [1, 2, 3, 4, 5]);
        string good = Path.Combine(_dir, "good.safetensors");
        w.Save(good);
        byte[] bytes = File.ReadAllBytes(good);
        int headerEnd = 8 + (int)BitConverter.ToUInt64(bytes);
        var rng = new Random(1234);
        string p = Path.Combine(_dir, "m.safetensors");
        for (int trial = 0; trial < 2000; trial++)
        {
            byte[] m = (byte[])bytes.Clone();
            int edits = rng.Next(1, 4);
            for (int k = 0; k < edits; k++)
            {
                int at = rng.Next(0, headerEnd);
                m[at] = rng.Next(3) switch { 0 => (byte)rng.Next(256), 1 => (byte)"0123456789"[rng.Next(10)], _ => (byte)"[]{}\",:-"[rng.Next(8)] };
            }
            if (rng.Next(4) == 0)
                Array.Resize(ref m, rng.Next(0, m.Length));
            File.WriteAllBytes(p, m);
            try
            {
                using SafetensorsFile f = SafetensorsFile.Open(p);
                foreach (TensorInfo t in f.Tensors.Values)
                    Assert.True(t.DataStart + t.ByteLength <= f.Length);
            }
            catch (InvalidDataException)
            {
            }
        }
    }

    private string CopyFixture(string name)
    {
        string dst = Path.Combine(_dir, name);
        Directory.CreateDirectory(dst);
        foreach (string f in Directory.GetFiles(Fixtures.Hf(name)))
            File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }

    /// <summary>Rewrites a fixture's model.safetensors with one tensor changed by <paramref name="edit"/> (null: drop it).</summary>
    private static void Rewrite(string dir, Func<string, float[], long[], (string, float[], long[])?> edit, string? extra = null)
    {
        string p = Path.Combine(dir, "model.safetensors");
        var w = new SafetensorsWriter();
        using (var c = Checkpoint.Open(dir))
        {
            foreach (string n in c.Names.Order(StringComparer.Ordinal))
            {
                TensorInfo t = c.Info(n);
                float[] v = c.ReadFloats(n, t.Shape);
                var r = edit(n, v, t.Shape);
                if (r is { } x)
                    w.AddF32(x.Item1, x.Item3, x.Item2);
            }
        }
        if (extra is not null)
            w.AddF32(extra, [1], [0f]);
        w.Save(p);
    }

    [Fact]
    public void Missing_tensor_is_named()
    {
        string d = CopyFixture("v3-tiny");
        Rewrite(d, (n, v, s) => n == "model.layers.1.mlp.experts.7.up_proj.weight" ? null : (n, v, s));
        var e = Assert.Throws<InvalidDataException>(() => WeightLoader.Load(d));
        Assert.Contains("model.layers.1.mlp.experts.7.up_proj.weight", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void Extra_tensor_is_named()
    {
        string d = CopyFixture("v3-tiny");
        Rewrite(d, (n, v, s) => (n, v, s), extra: "model.layers.9.self_attn.q_proj.weight");
        var e = Assert.Throws<InvalidDataException>(() => WeightLoader.Load(d));
        Assert.Contains("unexpected tensor 'model.layers.9.self_attn.q_proj.weight'", e.Message);
    }

    [Fact]
    public void Wrong_shape_is_named()
    {
        string d = CopyFixture("v3-tiny");
        Rewrite(d, (n, v, s) => n == "model.layers.0.self_attn.kv_b_proj.weight" ? (n, v, [s[1], s[0]]) : (n, v, s));
        Assert.Contains("'model.layers.0.self_attn.kv_b_proj.weight' has shape [32, 128], expected [128, 32]",
                        Assert.Throws<InvalidDataException>(() => WeightLoader.Load(d)).Message);
        string d2 = CopyFixture("v2-lite-tiny");
        Rewrite(d2, (n, v, s) => n == "model.layers.2.mlp.gate.weight" ? (n, v.Take(v.Length / 2).ToArray(), [s[0] / 2, s[1]]) : (n, v, s));
        var e = Assert.Throws<InvalidDataException>(() => WeightLoader.Load(d2));
        Assert.Contains("model.layers.2.mlp.gate.weight", e.Message);
        Assert.Contains("expected [16, 64]", e.Message);
    }

    [Fact]
    public void Sharded_checkpoint_gives_the_same_logits()
    {
        string src = Fixtures.Hf("v3-fp8");
        string d = Path.Combine(_dir, "sharded");
        Directory.CreateDirectory(d);
        File.Copy(Path.Combine(src, "config.json"), Path.Combine(d, "config.json"));
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        using (var c = Checkpoint.Open(src))
        {
            var names = c.Names.Order(StringComparer.Ordinal).ToArray();
            for (int shard = 0; shard < 3; shard++)
            {
                var w = new SafetensorsWriter();
                string file = $"model-0000{shard + 1}-of-00003.safetensors";
                foreach (string n in names.Where((_, i) => i % 3 == shard))
                {
                    TensorInfo t = c.Info(n);
                    w.AddBytes(n, t.DType, t.Shape, c.Bytes(n).ToArray());
                    map[n] = file;
                }
                w.Save(Path.Combine(d, file));
            }
        }
        string index = System.Text.Json.JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map });
        File.WriteAllText(Path.Combine(d, "model.safetensors.index.json"), index);
        int[] ids = [3, 1, 4, 1, 5, 9, 2, 6];
        using ModelWeights a = WeightLoader.Load(src), b = WeightLoader.Load(d);
        Assert.Equal(new Transformer(a).Logits(ids), new Transformer(b).Logits(ids));

        // a shard the index names but the directory lacks, a listed tensor missing, a path outside the directory
        File.WriteAllText(Path.Combine(d, "model.safetensors.index.json"), index.Replace("model-00003-of-00003", "model-00004-of-00003"));
        Assert.Throws<FileNotFoundException>(() => Checkpoint.Open(d).Dispose());
        var map2 = new SortedDictionary<string, string>(map) { ["ghost.weight"] = "model-00001-of-00003.safetensors" };
        File.WriteAllText(Path.Combine(d, "model.safetensors.index.json"), System.Text.Json.JsonSerializer.Serialize(new { weight_map = map2 }));
        Assert.Contains("'ghost.weight'", Assert.Throws<InvalidDataException>(() => Checkpoint.Open(d).Dispose()).Message);
        var map3 = new SortedDictionary<string, string>(map) { [map.Keys.First()] = "../model-00001-of-00003.safetensors" };
        File.WriteAllText(Path.Combine(d, "model.safetensors.index.json"), System.Text.Json.JsonSerializer.Serialize(new { weight_map = map3 }));
        Assert.Contains("not a file name", Assert.Throws<InvalidDataException>(() => Checkpoint.Open(d).Dispose()).Message);
        var map4 = new SortedDictionary<string, string>(map);
        map4.Remove(map.Keys.Last());
        File.WriteAllText(Path.Combine(d, "model.safetensors.index.json"), System.Text.Json.JsonSerializer.Serialize(new { weight_map = map4 }));
        Assert.Contains("not listed", Assert.Throws<InvalidDataException>(() => Checkpoint.Open(d).Dispose()).Message);
    }

    [Fact]
    public void Fp8_without_scale_is_named()
    {
        string d = CopyFixture("v3-fp8");
        string p = Path.Combine(d, "model.safetensors");
        var w = new SafetensorsWriter();
        using (var c = Checkpoint.Open(d))
        {
            foreach (string n in c.Names.Where(n => n != "model.layers.0.self_attn.o_proj.weight_scale_inv"))
            {
                TensorInfo t = c.Info(n);
                w.AddBytes(n, t.DType, t.Shape, c.Bytes(n).ToArray());
            }
        }
        w.Save(p);
        var e = Assert.Throws<InvalidDataException>(() => WeightLoader.Load(d));
        Assert.Contains("model.layers.0.self_attn.o_proj.weight_scale_inv", e.Message);
    }
}
