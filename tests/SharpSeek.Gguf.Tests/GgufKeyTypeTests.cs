// Every metadata key `convert` writes has the GGUF type llama.cpp's own writer (gguf-py) gives it. llama.cpp reads
// each key with a fixed type and refuses a file whose key has another (the UINT32 tokenizer.ggml.token_type of issue 16:
// "invalid gguf type for tokenizer.ggml.token_type"). The golden table tests/fixtures/gguf/gguf-py-key-types.tsv is
// extracted from gguf-py by tests/fixtures/gguf/gguf_py_key_types.py (the script calls every add_* setter of GGUFWriter
// and reads the file back with GGUFReader).
using SharpSeek.Formats.Gguf;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tests;

namespace SharpSeek.Gguf.Tests;

public sealed class GgufKeyTypeTests(ConvertedFixtures files) : IClassFixture<ConvertedFixtures>
{
    /// <summary>key -> (type, element type or null), from gguf-py.</summary>
    private static readonly Dictionary<string, (GgufValueType Type, GgufValueType? Element)> Golden = LoadGolden();

    private static Dictionary<string, (GgufValueType, GgufValueType?)> LoadGolden()
    {
        var table = new Dictionary<string, (GgufValueType, GgufValueType?)>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines(Path.Combine(Fixtures.Root, "gguf", "gguf-py-key-types.tsv")))
        {
            if (line.StartsWith('#') || line.Length == 0)
                continue;
            string[] f = line.Split('\t');
            table.Add(f[0], (Parse(f[1]), f[2].Length == 0 ? null : Parse(f[2])));
        }
        return table;
    }

    // gguf-py's GGUFValueType names (UINT32, FLOAT32, ...) to ours (UInt32, Float32, ...)
    private static GgufValueType Parse(string name) =>
        Enum.GetValues<GgufValueType>().Single(t => string.Equals(t.ToString(), name, StringComparison.OrdinalIgnoreCase));

    public static IEnumerable<object[]> FoldersAndTypes() =>
        from f in Fixtures.HfFolders()
        from t in Enum.GetValues<GgufFileType>()
        select new object[] { f[0], t };

    [Fact]
    public void The_golden_table_holds_the_keys_llama_cpp_reads_for_deepseek2_with_their_known_types()
    {
        // spot checks against gguf_writer.py, so a truncated or misparsed table fails here rather than passing everything
        Assert.True(Golden.Count > 200, $"only {Golden.Count} keys in the golden table");
        Assert.Equal((GgufValueType.Array, GgufValueType.Int32), Golden["tokenizer.ggml.token_type"]);
        Assert.Equal((GgufValueType.Array, GgufValueType.String), Golden["tokenizer.ggml.tokens"]);
        Assert.Equal((GgufValueType.UInt32, (GgufValueType?)null), Golden["deepseek2.block_count"]);
        Assert.Equal((GgufValueType.Float32, (GgufValueType?)null), Golden["deepseek2.rope.scaling.yarn_log_multiplier"]);
        Assert.Equal((GgufValueType.Bool, (GgufValueType?)null), Golden["deepseek2.expert_weights_norm"]);
        Assert.Equal((GgufValueType.String, (GgufValueType?)null), Golden["tokenizer.chat_template"]);
    }

    [Theory]
    [MemberData(nameof(FoldersAndTypes))]
    public void Every_key_of_a_converted_fixture_has_gguf_pys_type(string fixture, GgufFileType type)
    {
        using var f = GgufFile.Open(files.Gguf(fixture, type));
        AssertKeyTypes(f);
        Assert.NotNull(f.Get("tokenizer.ggml.token_type")); // the tokenizer section was written and checked
    }

    [Fact]
    public void Every_key_of_the_default_model_converted_has_gguf_pys_type()
    {
        // the real tokenizer: special tokens, a chat template, add_bos_token, BOS/EOS ids
        string dir = Fixtures.ShippedModel("sharpseek-mini");
        using ModelWeights w = WeightLoader.Load(dir);
        using var ms = new MemoryStream();
        GgufExport.Build(w, GgufFileType.Q8_0, Path.Combine(dir, "tokenizer.json")).WriteTo(ms);
        using GgufFile f = GgufFile.FromMemory(ms.ToArray(), "sharpseek-mini.gguf");
        AssertKeyTypes(f);
        Assert.NotNull(f.Get("tokenizer.chat_template"));
        Assert.NotNull(f.Get("tokenizer.ggml.bos_token_id"));
    }

    private static void AssertKeyTypes(GgufFile f)
    {
        var wrong = new List<string>();
        foreach (string key in f.Keys)
        {
            GgufValue v = f.Metadata[key];
            if (key == "general.architecture")
            {
                Assert.Equal(GgufValueType.String, v.Type);
                continue;
            }
            if (!Golden.TryGetValue(key, out var want))
            {
                wrong.Add($"{key}: not a key gguf-py writes");
                continue;
            }
            GgufValueType? element = v.Type == GgufValueType.Array ? v.ElementType : null;
            if (v.Type != want.Type || element != want.Element)
                wrong.Add($"{key}: {Describe(v.Type, element)}, gguf-py writes {Describe(want.Type, want.Element)}");
        }
        Assert.True(wrong.Count == 0, $"{f.FilePath}: {wrong.Count} of {f.Keys.Count} keys differ from gguf-py:\n  " + string.Join("\n  ", wrong));
    }

    private static string Describe(GgufValueType t, GgufValueType? e) => e is { } x ? $"array of {x}" : t.ToString();
}
