// Shared pieces of the GGUF tests: temporary directories, a small GGUF image with every metadata type, fixture
// checkpoints copied next to a synthetic byte-level tokenizer.json (the HF fixtures ship none, and llama.cpp needs
// a vocabulary of exactly vocab_size tokens), and llama.cpp through LLamaSharp.
using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using LLama;
using LLama.Common;
using LLama.Native;
using SharpSeek.Formats.Gguf;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace SharpSeek.Gguf.Tests;

internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sharpseek-gguf-" + Guid.NewGuid().ToString("N")[..12]);

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

internal static class SampleGguf
{
    /// <summary>Metadata of every value type, then an F32 [3, 4], a Q8_0 [2, 64] and a BF16 [5] tensor.</summary>
    public static GgufWriter Writer(int alignment = GgufFile.DefaultAlignment)
    {
        var w = new GgufWriter(alignment);
        w.Add("general.architecture", "test");
        w.Add("u8", GgufValue.UInt8(200));
        w.Add("i8", GgufValue.Int8(-100));
        w.Add("u16", GgufValue.UInt16(60000));
        w.Add("i16", GgufValue.Int16(-30000));
        w.Add("u32", GgufValue.UInt32(4_000_000_000));
        w.Add("i32", GgufValue.Int32(-2_000_000_000));
        w.Add("f32", GgufValue.Float32(1.5f));
        w.Add("bool", GgufValue.Bool(true));
        w.Add("str", GgufValue.String("héllo ✓"));
        w.Add("u64", GgufValue.UInt64(ulong.MaxValue));
        w.Add("i64", GgufValue.Int64(long.MinValue));
        w.Add("f64", GgufValue.Float64(-2.25));
        w.Add("arr.str", GgufValue.Array(new[] { "a", "", "ccc" }));
        w.Add("arr.i32", GgufValue.Array(new[] { 1, -2, 3 }));
        w.Add("arr.f32", GgufValue.Array(new[] { 0.5f, -1f }));
        w.Add("arr.bool", GgufValue.Array(new[] { true, false }));
        w.Add("arr.u8", GgufValue.Array(new byte[] { 1, 2, 3 }));
        w.Add("arr.u64", GgufValue.Array(new ulong[] { 7 }));
        w.Add("arr.empty", GgufValue.Array(Array.Empty<int>()));
        w.AddTensor("t.f32", GgmlType.F32, [4, 3], s => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(F32Values.AsSpan())));
        w.AddTensor("t.q8", GgmlType.Q8_0, [64, 2], s => s.Write(Q8Bytes));
        w.AddTensor("t.bf16", GgmlType.BF16, [5], s => s.Write(new byte[10]));
        return w;
    }

    public static readonly float[] F32Values = Enumerable.Range(0, 12).Select(i => i * 0.25f).ToArray();

    public static readonly byte[] Q8Bytes = Enumerable.Range(0, 4 * 34).Select(i => (byte)(i * 7)).ToArray();

    public static byte[] Bytes(int alignment = GgufFile.DefaultAlignment)
    {
        using var ms = new MemoryStream();
        Writer(alignment).WriteTo(ms);
        return ms.ToArray();
    }
}

internal static class FixtureModels
{
    /// <summary>
    /// A copy of a fixture checkpoint with a byte-level tokenizer.json: the DeepSeek-V3 pre-tokenizer and decoder,
    /// BOS/EOS as special tokens 0 and 1, the 256 byte tokens, a few merges; the converter pads it to vocab_size.
    /// </summary>
    public static string WithTokenizer(string fixture, string root)
    {
        string src = SharpSeek.Tests.Fixtures.Hf(fixture), dir = Path.Combine(root, fixture);
        Directory.CreateDirectory(dir);
        foreach (string f in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(src, f), Path.Combine(dir, f), overwrite: true);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), ByteLevelTokenizerJson());
        return dir;
    }

    public static string ByteLevelTokenizerJson()
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(SharpSeek.Tests.Fixtures.Root, "deepseek-v3-tokenizer", "tokenizer.json")))!.AsObject();
        var vocab = new JsonObject { ["<｜begin▁of▁sentence｜>"] = 0, ["<｜end▁of▁sentence｜>"] = 1 };
        int id = 2;
        for (int b = 0; b < 256; b++)
            vocab[SharpSeek.Tokenizer.ByteLevel.ToChar((byte)b).ToString()] = id++;
        string[][] merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["i", "n"]];
        foreach (string[] m in merges)
            vocab[m[0] + m[1]] = id++;
        json["model"]!["vocab"] = vocab;
        json["model"]!["merges"] = new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m[0], m[1])).ToArray());
        json["added_tokens"] = new JsonArray(
            Added(0, "<｜begin▁of▁sentence｜>"),
            Added(1, "<｜end▁of▁sentence｜>"));
        return json.ToJsonString();

        static JsonObject Added(int id, string content) => new()
        {
            ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false,
            ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
        };
    }

    public static (int[] Ids, float[] Logits) Reference(string fixture, int vocab)
    {
        string dir = SharpSeek.Tests.Fixtures.Hf(fixture);
        using Checkpoint r = Checkpoint.FromFiles(dir, [Path.Combine(dir, "reference.safetensors")], null);
        int[] ids = r.ReadInt64("input_ids").Select(v => (int)v).ToArray();
        return (ids, r.ReadFloats("logits", ids.Length, vocab));
    }

    public static float[] SharpSeekLogits(string modelPathOrGguf, int[] ids)
    {
        using ModelWeights w = WeightLoader.Load(modelPathOrGguf);
        return new Transformer(w).Logits(ids);
    }

    /// <summary>Logits of every position through the decode path: one token at a time over the cache.</summary>
    public static float[] SharpSeekDecodeLogits(ModelWeights w, int[] ids)
    {
        var model = new Transformer(w);
        int V = w.Config.VocabSize;
        KvCache cache = model.CreateCache();
        var logits = new float[ids.Length * V];
        for (int i = 0; i < ids.Length; i++)
            model.Forward([new SharpSeek.Model.Layers.TokenSlot(0, i, ids[i])], [cache], [0], logits.AsSpan(i * V, V));
        return logits;
    }
}

internal static class Logits
{
    /// <summary>Fraction of positions whose top token is the same in both [T, V] logit sets.</summary>
    public static double ArgmaxAgreement(float[] a, float[] b, int vocab)
    {
        int rows = a.Length / vocab, same = 0;
        for (int t = 0; t < rows; t++)
        {
            if (ArgMax(a.AsSpan(t * vocab, vocab)) == ArgMax(b.AsSpan(t * vocab, vocab)))
                same++;
        }
        return rows == 0 ? 1 : (double)same / rows;
    }

    /// <summary>Mean KL(softmax(want) || softmax(got)) over positions: robust to the few logits that move when a
    /// near-tie routing decision flips in these random tiny models.</summary>
    public static double MeanKl(float[] want, float[] got, int vocab)
    {
        int rows = want.Length / vocab;
        double total = 0;
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> w = want.AsSpan(r * vocab, vocab), g = got.AsSpan(r * vocab, vocab);
            double mw = double.NegativeInfinity, mg = double.NegativeInfinity, zw = 0, zg = 0;
            for (int i = 0; i < vocab; i++)
            {
                mw = Math.Max(mw, w[i]);
                mg = Math.Max(mg, g[i]);
            }
            for (int i = 0; i < vocab; i++)
            {
                zw += Math.Exp(w[i] - mw);
                zg += Math.Exp(g[i] - mg);
            }
            double kl = 0;
            for (int i = 0; i < vocab; i++)
            {
                double lw = w[i] - mw - Math.Log(zw), lg = g[i] - mg - Math.Log(zg);
                kl += Math.Exp(lw) * (lw - lg);
            }
            total += kl;
        }
        return rows == 0 ? 0 : total / rows;
    }

    public static string Describe(float[] want, float[] got, int vocab) =>
        $"rel RMS {SharpSeek.Tests.Numerics.RelRms(want, got):G3}, max abs {SharpSeek.Tests.Numerics.MaxAbsDiff(want, got):G3}, " +
        $"mean KL {MeanKl(want, got, vocab):G3}, argmax agreement {ArgmaxAgreement(want, got, vocab):P1}";

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++)
        {
            if (v[i] > v[best])
                best = i;
        }
        return best;
    }
}

/// <summary>Conversions shared by a test class: each (fixture, type) converted once.</summary>
public sealed class ConvertedFixtures : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ConcurrentDictionary<(string, GgufFileType), string> _files = new();
    private readonly ConcurrentDictionary<string, string> _models = new();

    /// <summary>The fixture copy with its synthetic tokenizer.</summary>
    public string Model(string fixture) => _models.GetOrAdd(fixture, f => FixtureModels.WithTokenizer(f, _dir.Path));

    /// <summary>The fixture converted to GGUF of <paramref name="type"/>.</summary>
    public string Gguf(string fixture, GgufFileType type) => _files.GetOrAdd((fixture, type), key =>
    {
        string model = Model(key.Item1);
        string path = _dir.File($"{key.Item1}-{key.Item2}.gguf");
        using ModelWeights w = WeightLoader.Load(model);
        GgufExport.Write(w, path, key.Item2, Path.Combine(model, "tokenizer.json"));
        return path;
    });

    public void Dispose() => _dir.Dispose();
}

/// <summary>llama.cpp (through LLamaSharp) evaluating token ids.</summary>
internal static class LlamaCpp
{
    private static readonly ConcurrentQueue<string> Log = new();

    static LlamaCpp()
    {
        NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            Log.Enqueue(message);
            while (Log.Count > 200)
                Log.TryDequeue(out _);
        });
    }

    /// <summary>The last llama.cpp log lines (for failure messages).</summary>
    public static string RecentLog => string.Concat(Log.TakeLast(30));

    /// <summary>Logits [T, V] of one uncached pass over <paramref name="ids"/>, F32 KV cache, no flash attention.</summary>
    public static float[] Logits(string gguf, int[] ids, int vocab, int threads = 2)
    {
        var p = new ModelParams(gguf)
        {
            ContextSize = (uint)Math.Max(64, ids.Length),
            BatchSize = (uint)Math.Max(64, ids.Length),
            UBatchSize = (uint)Math.Max(64, ids.Length),
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
        };
        LLamaWeights weights;
        try
        {
            weights = LLamaWeights.LoadFromFile(p);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"llama.cpp could not load {gguf}: {e.Message}\n{RecentLog}", e);
        }
        using (weights)
        {
            using LLamaContext ctx = weights.CreateContext(p);
            var batch = new LLamaBatch();
            for (int i = 0; i < ids.Length; i++)
                batch.Add(ids[i], i, LLamaSeqId.Zero, true);
            DecodeResult r = ctx.Decode(batch);
            if (r != DecodeResult.Ok)
                throw new InvalidOperationException($"llama.cpp decode returned {r}\n{RecentLog}");
            var all = new float[ids.Length * vocab];
            for (int i = 0; i < ids.Length; i++)
                ctx.NativeHandle.GetLogitsIth(i).CopyTo(all.AsSpan(i * vocab, vocab));
            return all;
        }
    }

    /// <summary>llama.cpp's tokenization of <paramref name="text"/> with a vocabulary-only load (no BOS added, special tokens parsed).</summary>
    public static int[] Tokenize(string gguf, string text)
    {
        var p = new ModelParams(gguf) { VocabOnly = true, GpuLayerCount = 0 };
        using LLamaWeights weights = LLamaWeights.LoadFromFile(p);
        return weights.Tokenize(text, false, true, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();
    }
}
