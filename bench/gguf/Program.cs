// Side-by-side benchmark of one GGUF file in SharpSeek and in llama.cpp (LLamaSharp 0.30.0 = llama.cpp 815a2a59,
// CPU backend): the same prompt of random token ids, the same thread count, prefill in one batch with logits for the
// last token, then greedy decoding one token per call. One warm-up, then one measured run per engine.
//   prepare --model HF_DIR --out DIR [--types bf16,q8_0,q4_k_m]   tokenizer.json (byte-level, padded by the converter) + GGUF files
//   run --gguf FILE [--threads 2] [--prompt 256] [--gen 64]        prints one markdown table row
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LLama;
using LLama.Common;
using LLama.Native;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tensors;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var opts = new Dictionary<string, string>();
for (int i = 1; i + 1 < args.Length; i += 2)
    opts[args[i].TrimStart('-')] = args[i + 1];
string Opt(string k, string d) => opts.TryGetValue(k, out string? v) ? v : d;

switch (args.FirstOrDefault())
{
    case "prepare":
        Prepare(Opt("model", ""), Opt("out", ""), Opt("types", "bf16,q8_0,q4_k_m").Split(','));
        return 0;
    case "run":
        Run(Opt("gguf", ""), int.Parse(Opt("threads", "2")), int.Parse(Opt("prompt", "256")), int.Parse(Opt("gen", "64")));
        return 0;
    default:
        Console.Error.WriteLine("usage: prepare --model HF_DIR --out DIR [--types bf16,q8_0,q4_k_m] | run --gguf FILE [--threads 2] [--prompt 256] [--gen 64]");
        return 2;
}

static void Prepare(string model, string outDir, string[] types)
{
    Directory.CreateDirectory(outDir);
    string tok = Path.Combine(outDir, "tokenizer.json");
    File.WriteAllText(tok, ByteLevelTokenizer());
    using ModelWeights w = WeightLoader.Load(model);
    foreach (string t in types)
    {
        var sw = Stopwatch.StartNew();
        string path = Path.Combine(outDir, $"{Path.GetFileName(Path.GetFullPath(model).TrimEnd('/'))}-{t}.gguf");
        GgufExport.Write(w, path, GgufExport.ParseType(t), tok);
        Console.Error.WriteLine($"wrote {path} ({new FileInfo(path).Length / 1e6:0} MB) in {sw.Elapsed.TotalSeconds:0} s");
    }
}

// byte-level vocabulary (BOS, EOS, 256 bytes) with the DeepSeek-V3 pre-tokenizer: the benchmark feeds token ids, but
// llama.cpp needs a vocabulary of vocab_size tokens to load a file (the converter pads it with [PAD] tokens)
static string ByteLevelTokenizer()
{
    var vocab = new JsonObject { ["<｜begin▁of▁sentence｜>"] = 0, ["<｜end▁of▁sentence｜>"] = 1 };
    int id = 2, extra = 0;
    for (int b = 0; b < 256; b++)
    {
        bool direct = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        vocab[((char)(direct ? b : 256 + extra++)).ToString()] = id++;
    }
    JsonObject Added(int i, string c) => new() { ["id"] = i, ["content"] = c, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true };
    var pre = new JsonArray(
        Split("\\p{N}{1,3}"),
        Split("[一-龥぀-ゟ゠-ヿ]+"),
        Split("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
        new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false });
    var json = new JsonObject
    {
        ["version"] = "1.0",
        ["added_tokens"] = new JsonArray(Added(0, "<｜begin▁of▁sentence｜>"), Added(1, "<｜end▁of▁sentence｜>")),
        ["normalizer"] = null,
        ["pre_tokenizer"] = new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = pre },
        ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
        ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
    };
    return json.ToJsonString();

    static JsonObject Split(string regex) => new()
    {
        ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = regex }, ["behavior"] = "Isolated", ["invert"] = false,
    };
}

static void Run(string gguf, int threads, int prompt, int gen)
{
    ModelConfig c = GgufModel.LoadConfig(gguf);
    var rng = new Random(1);
    int[] ids = Enumerable.Range(0, prompt).Select(_ => rng.Next(c.VocabSize)).ToArray();

    // SharpSeek: ModelBench (warm-up run, then one measured run) over the GGUF file, memory-mapped as stored
    (double ssPrefill, double ssDecode) = (0, 0);
    {
        using ModelWeights w = WeightLoader.Load(gguf);
        using var backend = new ThreadedBackend(threads);
        var model = new Transformer(w, backend);
        BenchResult r = ModelBench.Run(model, new BenchOptions { PromptTokens = prompt, GenTokens = gen, Runs = 1, SkipRoofline = true },
            m => Console.Error.WriteLine("sharpseek: " + m));
        (ssPrefill, ssDecode) = (r.PrefillTokensPerS, r.DecodeTokensPerS);
    }

    // llama.cpp: the same ids, prefill in one ubatch, greedy decode
    NativeLibraryConfig.All.WithLogCallback((level, msg) => { if (level == LLamaLogLevel.Error) Console.Error.Write(msg); });
    var p = new ModelParams(gguf)
    {
        ContextSize = (uint)(prompt + gen + 16),
        BatchSize = (uint)prompt,
        UBatchSize = (uint)prompt,
        Threads = threads,
        BatchThreads = threads,
        GpuLayerCount = 0,
    };
    using LLamaWeights weights = LLamaWeights.LoadFromFile(p);
    (double lcPrefill, double lcDecode) = (0, 0);
    for (int pass = 0; pass < 2; pass++) // warm-up, then the measured run
    {
        using LLamaContext ctx = weights.CreateContext(p);
        int g = pass == 0 ? Math.Min(gen, 8) : gen;
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt; i++)
            batch.Add(ids[i], i, LLamaSeqId.Zero, i == prompt - 1);
        var sw = Stopwatch.StartNew();
        Check(ctx.Decode(batch));
        int next = ArgMax(ctx.NativeHandle.GetLogitsIth(prompt - 1));
        double prefillS = sw.Elapsed.TotalSeconds;
        sw.Restart();
        for (int k = 0; k < g; k++)
        {
            batch.Clear();
            batch.Add(next, prompt + k, LLamaSeqId.Zero, true);
            Check(ctx.Decode(batch));
            next = ArgMax(ctx.NativeHandle.GetLogitsIth(0));
        }
        double decodeS = sw.Elapsed.TotalSeconds;
        (lcPrefill, lcDecode) = (prompt / prefillS, g / decodeS);
        Console.Error.WriteLine($"llama.cpp {(pass == 0 ? "warm-up" : "run 1")}: prefill {lcPrefill:0.0} tok/s, decode {lcDecode:0.00} tok/s");
    }
    string type = GgufExport.ParseType(Path.GetFileNameWithoutExtension(gguf).Split('-').Last()).ToString().ToLowerInvariant();
    Console.WriteLine($"| {type} | {new FileInfo(gguf).Length / 1e6:0} | {ssPrefill:0.0} | {lcPrefill:0.0} | {ssPrefill / lcPrefill:0.00} | {ssDecode:0.00} | {lcDecode:0.00} | {ssDecode / lcDecode:0.00} |");

    static void Check(DecodeResult r)
    {
        if (r != DecodeResult.Ok)
            throw new InvalidOperationException($"llama.cpp decode returned {r}");
    }

    static int ArgMax(Span<float> v)
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
