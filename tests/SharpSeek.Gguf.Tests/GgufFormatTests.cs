// The GGUF container: what the writer writes the reader reads back (every value type, alignment, tensor data),
// and the layout matches the specification byte for byte where it is fixed.
using System.Buffers.Binary;
using System.Text;
using SharpSeek.Formats.Gguf;

namespace SharpSeek.Gguf.Tests;

public sealed class GgufFormatTests
{
    [Fact]
    public void Architecture_is_read_from_the_first_entry_or_from_the_whole_metadata()
    {
        using var dir = new TempDir();
        string first = dir.File("first.gguf"), later = dir.File("later.gguf"), none = dir.File("none.gguf");
        var a = new GgufWriter();
        a.Add("general.architecture", "deepseek4");
        a.Add("general.name", "x");
        a.Save(first);
        var b = new GgufWriter();
        b.Add("general.name", "x"); // not first: the whole metadata is parsed
        b.Add("general.architecture", "deepseek2");
        b.Save(later);
        var c = new GgufWriter();
        c.Add("general.name", "x");
        c.Save(none);
        Assert.Equal("deepseek4", GgufFile.ReadArchitecture(first));
        Assert.Equal("deepseek2", GgufFile.ReadArchitecture(later));
        Assert.Null(GgufFile.ReadArchitecture(none));
        File.WriteAllBytes(dir.File("bad.gguf"), [1, 2, 3]);
        Assert.Throws<InvalidDataException>(() => GgufFile.ReadArchitecture(dir.File("bad.gguf")));
    }

    [Fact]
    public void Every_value_type_round_trips()
    {
        using GgufFile f = GgufFile.FromMemory(SampleGguf.Bytes(), "sample.gguf");
        Assert.Equal(3u, f.Version);
        Assert.Equal((byte)200, f.Get("u8")!.Value);
        Assert.Equal((sbyte)-100, f.Get("i8")!.Value);
        Assert.Equal((ushort)60000, f.Get("u16")!.Value);
        Assert.Equal((short)-30000, f.Get("i16")!.Value);
        Assert.Equal(4_000_000_000u, f.Get("u32")!.Value);
        Assert.Equal(-2_000_000_000, f.Get("i32")!.Value);
        Assert.Equal(1.5f, f.Get("f32")!.Value);
        Assert.Equal(true, f.GetBool("bool"));
        Assert.Equal("héllo ✓", f.GetString("str"));
        Assert.Equal(ulong.MaxValue, f.Get("u64")!.Value);
        Assert.Equal(long.MinValue, f.Get("i64")!.Value);
        Assert.Equal(-2.25, f.GetNumber("f64"));
        Assert.Equal(["a", "", "ccc"], f.GetStringArray("arr.str")!);
        Assert.Equal([1, -2, 3], f.GetInt32Array("arr.i32")!);
        Assert.Equal([0.5f, -1f], (float[])f.Get("arr.f32")!.Value);
        Assert.Equal([true, false], (bool[])f.Get("arr.bool")!.Value);
        Assert.Equal([1, 2, 3], f.GetInt32Array("arr.u8")!);
        Assert.Equal([7UL], (ulong[])f.Get("arr.u64")!.Value);
        Assert.Empty(f.GetInt32Array("arr.empty")!);
        Assert.Equal(GgufValueType.Array, f.Get("arr.str")!.Type);
        Assert.Equal(GgufValueType.String, f.Get("arr.str")!.ElementType);
        Assert.Equal("general.architecture", f.Keys[0]);
        Assert.Equal(4_000_000_000, f.GetInteger("u32"));
        Assert.Null(f.GetInteger("absent"));
    }

    [Fact]
    public void Tensors_round_trip_with_their_data()
    {
        using GgufFile f = GgufFile.FromMemory(SampleGguf.Bytes(), "sample.gguf");
        Assert.Equal(["t.f32", "t.q8", "t.bf16"], f.Tensors.Select(t => t.Name));
        GgufTensorInfo a = f.Tensor("t.f32"), q = f.Tensor("t.q8"), b = f.Tensor("t.bf16");
        Assert.Equal([4L, 3L], a.Dims);
        Assert.Equal("{4, 3}", a.DimsText);
        Assert.Equal(12, a.ElementCount);
        Assert.Equal(GgmlType.Q8_0, q.Type);
        Assert.Equal(2 * 2 * 34, q.ByteLength);
        Assert.Equal(SampleGguf.F32Values, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(f.Bytes(a)).ToArray());
        Assert.Equal(SampleGguf.Q8Bytes, f.Bytes(q).ToArray());
        Assert.Equal(10, b.ByteLength);
        foreach (GgufTensorInfo t in f.Tensors)
            Assert.Equal(0, (f.DataOffset + t.Offset) % 32);
    }

    [Fact]
    public void Header_layout_matches_the_specification()
    {
        byte[] bytes = SampleGguf.Bytes();
        Assert.Equal("GGUF", Encoding.ASCII.GetString(bytes, 0, 4));
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(3ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)));   // tensors
        Assert.Equal(20ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16))); // keys
        // first key: u64 length, bytes, u32 type (8 = string), u64 length, bytes
        Assert.Equal(20ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(24)));
        Assert.Equal("general.architecture", Encoding.ASCII.GetString(bytes, 32, 20));
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(52)));
        Assert.Equal(0, bytes.Length % 32); // the last tensor is padded too
    }

    [Fact]
    public void Custom_alignment_is_written_and_honoured()
    {
        byte[] bytes = SampleGguf.Bytes(alignment: 256);
        using GgufFile f = GgufFile.FromMemory(bytes, "aligned.gguf");
        Assert.Equal(256, f.Alignment);
        Assert.Equal(256L, f.GetInteger("general.alignment"));
        Assert.Equal(0, f.DataOffset % 256);
        foreach (GgufTensorInfo t in f.Tensors)
            Assert.Equal(0, t.Offset % 256);
        Assert.Equal(SampleGguf.Q8Bytes, f.Bytes(f.Tensor("t.q8")).ToArray());
    }

    [Fact]
    public void Arrays_are_tagged_by_their_exact_element_type()
    {
        // the runtime lets int[] pass as uint[], sbyte[] as byte[], short[] as ushort[], long[] as ulong[]: the tag must
        // still be the signed type (it was UINT32 for int[], which llama.cpp refuses for tokenizer.ggml.token_type)
        (Array Values, GgufValueType Type)[] cases =
        [
            (new byte[] { 1 }, GgufValueType.UInt8), (new sbyte[] { -1 }, GgufValueType.Int8),
            (new ushort[] { 1 }, GgufValueType.UInt16), (new short[] { -1 }, GgufValueType.Int16),
            (new uint[] { 1 }, GgufValueType.UInt32), (new int[] { -1 }, GgufValueType.Int32),
            (new ulong[] { 1 }, GgufValueType.UInt64), (new long[] { -1 }, GgufValueType.Int64),
            (new float[] { 1 }, GgufValueType.Float32), (new double[] { 1 }, GgufValueType.Float64),
            (new bool[] { true }, GgufValueType.Bool), (new[] { "a" }, GgufValueType.String),
        ];
        var w = new GgufWriter();
        for (int i = 0; i < cases.Length; i++)
        {
            Assert.Equal(cases[i].Type, GgufValue.Array(cases[i].Values).ElementType);
            w.Add($"k{i}", GgufValue.Array(cases[i].Values));
        }
        var ms = new MemoryStream();
        w.WriteTo(ms);
        using GgufFile f = GgufFile.FromMemory(ms.ToArray(), "arrays.gguf");
        for (int i = 0; i < cases.Length; i++)
            Assert.Equal(cases[i].Type, f.Get($"k{i}")!.ElementType);
        Assert.Equal([-1], f.GetInt32Array("k5")!);
    }

    [Fact]
    public void Files_are_memory_mapped_and_written_atomically()
    {
        using var dir = new TempDir();
        string path = dir.File("m.gguf");
        SampleGguf.Writer().Save(path);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
        using GgufFile f = GgufFile.Open(path);
        Assert.Equal(path, f.FilePath);
        Assert.Equal(new FileInfo(path).Length, f.Length);
        Assert.Equal(SampleGguf.Q8Bytes, f.Bytes(f.Tensor("t.q8")).ToArray());
    }

    [Fact]
    public void Writer_rejects_bad_tensors_and_wrong_byte_counts()
    {
        var w = new GgufWriter();
        Assert.Throws<ArgumentException>(() => w.AddTensor("x", GgmlType.Q8_0, [33], _ => { }));
        Assert.Throws<ArgumentException>(() => w.AddTensor(new string('n', 64), GgmlType.F32, [1], _ => { }));
        Assert.Throws<ArgumentException>(() => w.AddTensor("d", GgmlType.F32, [1, 2, 3, 4, 5], _ => { }));
        w.AddTensor("short", GgmlType.F32, [4], s => s.Write(new byte[12]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("short", GgmlType.F32, [4], _ => { }));
        var e = Assert.Throws<InvalidOperationException>(() => w.WriteTo(new MemoryStream()));
        Assert.Contains("'short' wrote 12 bytes, expected 16", e.Message);
    }

    [Fact]
    public void Duplicate_keys_are_refused_by_the_writer()
    {
        var w = new GgufWriter();
        w.Add("k", 1u);
        Assert.Throws<ArgumentException>(() => w.Add("k", 2u));
    }

    [Fact]
    public void Every_known_type_has_llama_cpp_block_sizes()
    {
        Assert.Equal((32, 34), (GgmlTypes.BlockValues(GgmlType.Q8_0), GgmlTypes.BlockBytes(GgmlType.Q8_0)));
        Assert.Equal((32, 18), (GgmlTypes.BlockValues(GgmlType.Q4_0), GgmlTypes.BlockBytes(GgmlType.Q4_0)));
        Assert.Equal((256, 144), (GgmlTypes.BlockValues(GgmlType.Q4_K), GgmlTypes.BlockBytes(GgmlType.Q4_K)));
        Assert.Equal((256, 210), (GgmlTypes.BlockValues(GgmlType.Q6_K), GgmlTypes.BlockBytes(GgmlType.Q6_K)));
        Assert.Equal(2, GgmlTypes.BlockBytes(GgmlType.BF16));
        Assert.Equal(30u, (uint)GgmlType.BF16);
        Assert.Equal(630, GgmlTypes.RowBytes(GgmlType.Q6_K, 768));
        Assert.False(GgmlTypes.TryGetLayout(4, out _, out _)); // removed Q4_2
        Assert.Throws<ArgumentException>(() => GgmlTypes.RowBytes(GgmlType.Q4_K, 100));
    }
}
