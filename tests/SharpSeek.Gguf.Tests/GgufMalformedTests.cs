// Malformed GGUF files: each defect raises InvalidDataException naming the file and the key or tensor, without
// reading out of range or allocating by an untrusted count; then thousands of random header mutations of valid
// files, where InvalidDataException is the only exception allowed (ggml tests/test-gguf.cpp does the same).
using System.Text;
using SharpSeek.Formats.Gguf;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;

namespace SharpSeek.Gguf.Tests;

public sealed class GgufMalformedTests
{
    private const string Name = "bad.gguf";

    /// <summary>Writes a GGUF image field by field so that any field can be wrong.</summary>
    private sealed class Raw
    {
        private readonly MemoryStream _ms = new();
        private readonly BinaryWriter _w;

        public Raw(uint magic = GgufFile.Magic, uint version = 3, ulong tensors = 0, ulong kvs = 0)
        {
            _w = new BinaryWriter(_ms);
            _w.Write(magic);
            _w.Write(version);
            _w.Write(tensors);
            _w.Write(kvs);
        }

        public Raw Str(string s) { byte[] b = Encoding.UTF8.GetBytes(s); _w.Write((ulong)b.Length); _w.Write(b); return this; }
        public Raw U8(byte v) { _w.Write(v); return this; }
        public Raw U32(uint v) { _w.Write(v); return this; }
        public Raw U64(ulong v) { _w.Write(v); return this; }
        public Raw Bytes(byte[] b) { _w.Write(b); return this; }
        public Raw Kv(string key, uint value) => Str(key).U32((uint)GgufValueType.UInt32).U32(value);

        public Raw Tensor(string name, GgmlType type, ulong offset, params ulong[] dims)
        {
            Str(name).U32((uint)dims.Length);
            foreach (ulong d in dims)
                U64(d);
            return U32((uint)type).U64(offset);
        }

        public Raw PadTo(int alignment)
        {
            while (_ms.Length % alignment != 0)
                _w.Write((byte)0);
            return this;
        }

        public byte[] ToArray() => _ms.ToArray();
    }

    private static InvalidDataException Bad(byte[] image, params string[] mentions)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => GgufFile.FromMemory(image, Name).Dispose());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1_000_000 + 64L * image.Length, $"parsing allocated {allocated} bytes for a {image.Length}-byte file");
        Assert.Contains(Name, e.Message);
        foreach (string m in mentions)
            Assert.Contains(m, e.Message);
        return e;
    }

    [Fact]
    public void Bad_magic() => Bad(new Raw(magic: 0x58554747).ToArray(), "not a GGUF file");

    [Fact]
    public void Truncated_header() => Bad(new Raw().ToArray()[..20], "truncated");

    [Theory]
    [InlineData(1u, "version 1")]
    [InlineData(4u, "version 4")]
    [InlineData(0x03000000u, "big-endian")]
    public void Bad_version(uint version, string mention) => Bad(new Raw(version: version).ToArray(), mention);

    [Fact]
    public void Metadata_count_larger_than_the_file() => Bad(new Raw(kvs: 0x7FFF_FFFF_FFFF).Bytes(new byte[64]).ToArray(), "metadata count");

    [Fact]
    public void Tensor_count_larger_than_the_file() => Bad(new Raw(tensors: 1L << 40).Bytes(new byte[64]).ToArray(), "tensor count");

    [Fact]
    public void Key_length_beyond_the_file() => Bad(new Raw(kvs: 1).U64(1UL << 50).Bytes(new byte[16]).ToArray(), "metadata key 0", "string length");

    [Fact]
    public void String_value_beyond_the_file() =>
        Bad(new Raw(kvs: 1).Str("general.name").U32((uint)GgufValueType.String).U64(1000).Bytes(new byte[20]).ToArray(), "general.name", "runs past the end");

    [Fact]
    public void Unknown_value_type() => Bad(new Raw(kvs: 1).Str("k.x").U32(99).U32(0).ToArray(), "'k.x'", "unknown value type 99");

    [Fact]
    public void Unknown_array_type() => Bad(new Raw(kvs: 1).Str("k.arr").U32((uint)GgufValueType.Array).U32(77).U64(1).U64(0).ToArray(), "'k.arr'", "unknown type 77");

    [Fact]
    public void Nested_arrays() => Bad(new Raw(kvs: 1).Str("k.arr").U32((uint)GgufValueType.Array).U32((uint)GgufValueType.Array).U64(1).U64(0).ToArray(), "'k.arr'", "array of arrays");

    [Fact]
    public void Array_length_beyond_the_file_allocates_nothing_large() =>
        Bad(new Raw(kvs: 1).Str("tokenizer.ggml.tokens").U32((uint)GgufValueType.Array).U32((uint)GgufValueType.String).U64(0x7FFF_FFFF).Bytes(new byte[64]).ToArray(),
            "tokenizer.ggml.tokens", "array length 2147483647");

    [Fact]
    public void String_element_beyond_the_file() =>
        Bad(new Raw(kvs: 1).Str("tokenizer.ggml.tokens").U32((uint)GgufValueType.Array).U32((uint)GgufValueType.String).U64(2).Str("ok").U64(1UL << 40).ToArray(),
            "element 1 of key 'tokenizer.ggml.tokens'");

    [Fact]
    public void Bool_that_is_neither_0_nor_1() => Bad(new Raw(kvs: 1).Str("b").U32((uint)GgufValueType.Bool).U8(2).ToArray(), "bool byte is 2");

    [Fact]
    public void Invalid_utf8_key() => Bad(new Raw(kvs: 1).U64(2).Bytes([0xC3, 0x28]).U32(4).U32(0).ToArray(), "not valid UTF-8");

    [Fact]
    public void Duplicate_key() => Bad(new Raw(kvs: 2).Kv("a.b", 1).Kv("a.b", 2).ToArray(), "duplicate metadata key 'a.b'");

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(48u)]
    public void Alignment_that_is_not_a_power_of_two(uint a) => Bad(new Raw(kvs: 1).Kv("general.alignment", a).ToArray(), "general.alignment", $"is {a}");

    [Fact]
    public void Unknown_tensor_type() =>
        Bad(new Raw(tensors: 1).Tensor("blk.0.x.weight", (GgmlType)4, 0, 32).PadTo(32).Bytes(new byte[64]).ToArray(), "'blk.0.x.weight'", "unknown type 4");

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void Dimension_count_out_of_range(int n) =>
        Bad(new Raw(tensors: 1).Tensor("t", GgmlType.F32, 0, Enumerable.Repeat(1UL, n).ToArray()).PadTo(32).Bytes(new byte[64]).ToArray(), "'t'", $"{n} dimensions");

    [Fact]
    public void Dims_whose_product_overflows() =>
        Bad(new Raw(tensors: 1).Tensor("big", GgmlType.F32, 0, 1UL << 40, 1UL << 40).PadTo(32).ToArray(), "'big'", "overflow");

    [Fact]
    public void Negative_dim() =>
        Bad(new Raw(tensors: 1).Tensor("neg", GgmlType.F32, 0, ulong.MaxValue - 3).PadTo(32).ToArray(), "'neg'", "too large");

    [Fact]
    public void Row_not_a_whole_number_of_blocks() =>
        Bad(new Raw(tensors: 1).Tensor("q", GgmlType.Q8_0, 0, 33).PadTo(32).Bytes(new byte[64]).ToArray(), "'q'", "not a multiple of the Q8_0 block size 32");

    [Fact]
    public void Misaligned_tensor_data() =>
        Bad(new Raw(tensors: 1).Tensor("m", GgmlType.F32, 8, 2).PadTo(32).Bytes(new byte[64]).ToArray(), "'m'", "not a multiple of the alignment 32");

    [Fact]
    public void Tensor_data_past_the_end() =>
        Bad(new Raw(tensors: 1).Tensor("e", GgmlType.F32, 32, 16).PadTo(32).Bytes(new byte[64]).ToArray(), "'e'", "past the end");

    [Fact]
    public void Tensor_offset_near_ulong_max() =>
        Bad(new Raw(tensors: 1).Tensor("o", GgmlType.F32, ulong.MaxValue - 31, 4).PadTo(32).Bytes(new byte[64]).ToArray(), "'o'", "past the end");

    [Fact]
    public void Overlapping_tensors() =>
        Bad(new Raw(tensors: 2).Tensor("first", GgmlType.F32, 0, 16).Tensor("second", GgmlType.F32, 32, 4).PadTo(32).Bytes(new byte[128]).ToArray(), "overlaps");

    [Fact]
    public void Duplicate_tensor() =>
        Bad(new Raw(tensors: 2).Tensor("d", GgmlType.F32, 0, 4).Tensor("d", GgmlType.F32, 32, 4).PadTo(32).Bytes(new byte[64]).ToArray(), "duplicate tensor 'd'");

    [Fact]
    public void Tensor_name_longer_than_ggml_allows() =>
        Bad(new Raw(tensors: 1).Tensor(new string('x', 64), GgmlType.F32, 0, 4).PadTo(32).Bytes(new byte[32]).ToArray(), "at most 63");

    [Fact]
    public void Missing_file_is_FileNotFound() => Assert.Throws<FileNotFoundException>(() => GgufFile.Open("/nonexistent/x.gguf"));

    [Fact]
    public void Too_short_file_on_disk()
    {
        using var dir = new TempDir();
        string p = dir.File("short.gguf");
        File.WriteAllBytes(p, Encoding.ASCII.GetBytes("GGUF"));
        var e = Assert.Throws<InvalidDataException>(() => GgufFile.Open(p));
        Assert.Contains(p, e.Message);
    }

    // --- random mutations ---------------------------------------------------------------------------------------

    /// <summary>Mutates the header region (metadata and tensor infos) of a valid file in one of several ways.</summary>
    private static byte[] Mutate(byte[] valid, long headerEnd, Random r)
    {
        byte[] m = (byte[])valid.Clone();
        int hdr = (int)Math.Min(headerEnd, m.Length);
        switch (r.Next(6))
        {
            case 0: // flip a few bytes
                for (int k = r.Next(1, 5); k > 0; k--)
                    m[r.Next(hdr)] ^= (byte)(1 << r.Next(8));
                break;
            case 1: // a random byte value
                m[r.Next(hdr)] = (byte)r.Next(256);
                break;
            case 2: // a large 64-bit value over a length, count, dim or offset
            {
                int at = r.Next(Math.Max(1, hdr - 8));
                ulong[] values = [ulong.MaxValue, 1UL << 63, 1UL << 32, 0x7FFF_FFFF, (ulong)m.Length, (ulong)r.NextInt64(), 0];
                BitConverter.TryWriteBytes(m.AsSpan(at, 8), values[r.Next(values.Length)]);
                break;
            }
            case 3: // a 32-bit value over a type tag or dimension count
            {
                int at = r.Next(Math.Max(1, hdr - 4));
                uint[] values = [0, 1, 4, 9, 12, 13, 31, 40, 99, uint.MaxValue];
                BitConverter.TryWriteBytes(m.AsSpan(at, 4), values[r.Next(values.Length)]);
                break;
            }
            case 4: // truncate
                return m[..r.Next(m.Length)];
            default: // delete or duplicate a span of the header
            {
                int at = r.Next(hdr), n = r.Next(1, 16);
                n = Math.Min(n, m.Length - at);
                return r.Next(2) == 0
                    ? [.. m.AsSpan(0, at), .. m.AsSpan(at + n)]
                    : [.. m.AsSpan(0, at + n), .. m.AsSpan(at, n), .. m.AsSpan(at + n)];
            }
        }
        return m;
    }

    [Fact]
    public void Random_header_mutations_raise_only_InvalidDataException()
    {
        byte[][] seeds = [SampleGguf.Bytes(), SampleGguf.Bytes(alignment: 64)];
        var r = new Random(20250615);
        int rejected = 0, accepted = 0;
        for (int i = 0; i < 6000; i++)
        {
            byte[] valid = seeds[i % seeds.Length];
            long headerEnd;
            using (GgufFile f = GgufFile.FromMemory(valid, Name))
                headerEnd = f.DataOffset;
            byte[] m = Mutate(valid, headerEnd, r);
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                using GgufFile f = GgufFile.FromMemory(m, Name);
                long sum = 0;
                foreach (GgufTensorInfo t in f.Tensors)
                {
                    foreach (byte b in f.Bytes(t))
                        sum += b;
                }
                foreach (string k in f.Keys)
                    _ = f.Metadata[k].ToString();
                accepted++;
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(Name, e.Message);
                rejected++;
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 1_000_000 + 64L * m.Length, $"mutation {i}: parsing allocated {allocated} bytes for a {m.Length}-byte file");
        }
        Assert.True(rejected > 3000 && accepted > 100, $"rejected {rejected}, accepted {accepted}: the mutations should exercise both outcomes");
    }

    [Fact]
    public void Random_mutations_of_a_model_file_raise_only_data_or_support_errors()
    {
        using var dir = new TempDir();
        string model = FixtureModels.WithTokenizer("v2-lite-tiny", dir.Path);
        string gguf = dir.File("m.gguf");
        using (ModelWeights w = WeightLoader.Load(model))
            GgufExport.Write(w, gguf, GgufFileType.Q8_0, Path.Combine(model, "tokenizer.json"));
        byte[] valid = File.ReadAllBytes(gguf);
        long headerEnd;
        using (GgufFile f = GgufFile.Open(gguf))
            headerEnd = f.DataOffset;
        var r = new Random(7);
        string mutated = dir.File("mutated.gguf");
        int loaded = 0;
        for (int i = 0; i < 400; i++)
        {
            File.WriteAllBytes(mutated, Mutate(valid, headerEnd, r));
            try
            {
                using ModelWeights w = WeightLoader.Load(mutated);
                using GgufFile f = GgufFile.Open(mutated);
                _ = GgufTokenizer.Load(f);
                loaded++;
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(mutated, e.Message);
            }
            catch (NotSupportedException e)
            {
                Assert.Contains(mutated, e.Message);
            }
        }
        Assert.True(loaded < 400, "some mutations must be rejected");
    }
}
