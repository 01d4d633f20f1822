// Golden hashes of what the writers and name rules produced before the architecture descriptor (issue 15): GGUF files
// of every fixture and type, Hugging Face exports, tensor lists of synthetic checkpoints, GGUF locations and load
// formats by name. The descriptor refactor must not change a byte; a change here is a format change, not a refactor.
using System.Security.Cryptography;
using System.Text;
using SharpSeek.Model.Architecture;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tensors;
using SharpSeek.Tests;

namespace SharpSeek.Gguf.Tests;

public sealed class WriterGoldenTests
{
    // recorded with the writers of commit 94e1fff (before the descriptor; the synth/ entries from a checkout of it); the
    // gguf/ entries since: files written without a tokenizer carry tokenizer.ggml.model "no_vocab" (gguf-py's NoVocab),
    // which llama.cpp needs to load them (a deliberate format change, the only one)
    private static readonly Dictionary<string, string> Golden = new(StringComparer.Ordinal)
    {
        ["enumerate/v2-lite-tiny"] = "7EF1097B6923634F07E0A3183DC3C0E6E1955022A95276DD217643C5E64670AE",
        ["enumerate/v3-fp8"] = "FC14A4A0552B6D176C3F8589D09E106931E406659E30E9D6B49869DA25CB5BC4",
        ["enumerate/v3-tiny"] = "D9F43E429605924B450548691E7F2312A0A4B3340E8C0D11452C41FB22854824",
        ["enumerate/v3-yarn-bf16"] = "BE8A23D165D3C8B8EA00FC4B821A089C50E683EB3ED0253FE0F21DFAC3A6AEE8",
        ["gguf/v2-lite-tiny/BF16"] = "0E030CF50814353038281B08D9102579475DB69F009F45ECBB2BCEEE77FAF157",
        ["gguf/v2-lite-tiny/F32"] = "29C6270C057F99896DD824D7E3A357C5BDEF60BB03B538C5C564602BD4C7E084",
        ["gguf/v2-lite-tiny/Q4_0"] = "5B7D70BE92F3A615690C8A24A4451D60633865C037ECB55A3240142CE5A60DE9",
        ["gguf/v2-lite-tiny/Q4_K_M"] = "995D2829445E64B620F637D45FFCB4F17325F802AA229FF2523E6D39519A854A",
        ["gguf/v2-lite-tiny/Q8_0"] = "E2C0B8AD54346BE94C9CF4E771F4EA325DEBDEA12A4AA70DF1BFC394C9208049",
        ["gguf/v3-fp8/BF16"] = "F04EC5A40922AD851875FD2A2122DFA7C946106DBC8083AE05801807AC4EF6A4",
        ["gguf/v3-fp8/F32"] = "109639DD762C409B207E5BE66304AC5916386CE5EB0EAB87A550ED908F93161D",
        ["gguf/v3-fp8/Q4_0"] = "D9E17B850BEB6CB9781B2BB68F9D6B75B8FA3563D1876E940C81065B3957EFCF",
        ["gguf/v3-fp8/Q4_K_M"] = "04D78E12AD0B0830DBBD211881901988A7FE161F7F545D98E8F2638DD72BB146",
        ["gguf/v3-fp8/Q8_0"] = "47AD96F621189316420FA34B171EB8059DB75562273C806146C41F1A6756FF83",
        ["gguf/v3-tiny/BF16"] = "061A46E436CC6E5F11C0A2EB9314B98893860AAC0AEEA5DC9EB357EAA4C70687",
        ["gguf/v3-tiny/F32"] = "4132A318078B97866A5F8DE40C8053350E49601C93EDF5F0781B0BB32CBD9B95",
        ["gguf/v3-tiny/Q4_0"] = "80CCC8D54C560E1481AB7966F642699B0C6BCD64B081ACB54A7B2578490E0D05",
        ["gguf/v3-tiny/Q4_K_M"] = "80AA7D5C5BCBCD2C4B0D276DB62F8AB0685AD271391C64A7E41046493C437C51",
        ["gguf/v3-tiny/Q8_0"] = "6CD6EC410F72C09579A9FA3F2B8A3BDFD8E54CBB41FD4829E8CB130B42396212",
        ["gguf/v3-yarn-bf16/BF16"] = "A72BAB977F665C0D7A7BF368113F987A11D83F59197CB99C9EA33BEDA2B66989",
        ["gguf/v3-yarn-bf16/F32"] = "36FE7554C0E81AA50B4E0553407F9496A0931052A669AC15D0373622D29FC89A",
        ["gguf/v3-yarn-bf16/Q4_0"] = "D2752144335740D2640A45141F66686CFE5F1A247489A7C1667EC20D8E66EB85",
        ["gguf/v3-yarn-bf16/Q4_K_M"] = "7CB3BCE2600CDB4E327B64582A7D24A0AA81E2FCA46D2B47EF39EBAE6A70F26B",
        ["gguf/v3-yarn-bf16/Q8_0"] = "DC697C44912C210478957B57E9A0F15046FF8F863DEAD3C4168CADA1102D51A3",
        ["hf/v2-lite-tiny/BF16"] = "131:F0B6491398B14E559CA7D39CEA2C2ABA6FD5799FB170D54537C7294D94337E6A",
        ["hf/v2-lite-tiny/F32"] = "131:36B36E1C90AE972CF638F2635642507E4392FC3D8627E4ACDD7FC4A7985B1152",
        ["hf/v3-fp8/BF16"] = "95:37F2DFF46D89D3236BD917EE965B6786CD4746316CC4CF660A889E4D9AAEA605",
        ["hf/v3-fp8/F32"] = "95:19F76B3100083A8186145251E370753200D5E6CD0C1A3D58E16FFCFC91698EBB",
        ["hf/v3-tiny/BF16"] = "205:78297C5E21A7ECC21DE24BD99F8A242FFEBC95D741CBD5D0D18979AAEB0C7644",
        ["hf/v3-tiny/F32"] = "205:593FC3EF0DCDF76AED1E0EF9EB34CB034A1CA6A42E0947CD412F53646B0EA17F",
        ["hf/v3-yarn-bf16/BF16"] = "151:4B8913F7D7167BF5E461D2EEB53A144EB9F7CEB53840C5FBE1A92988FECB5F66",
        ["hf/v3-yarn-bf16/F32"] = "151:30D4F90B86BE9B7F606E61CCE08C14E266E2C3CF35B4934DD274E1D4D38270C1",
        ["locate/deepseek-v2-lite.json"] = "CA97A816DDBA30573DF560A989F74D40750B46C5562D8267C60B465CEBA18F3E",
        ["locate/deepseek-v3.json"] = "FDE7FD88EA5948EA01CC84BC7371A1C32323BA6731A5CFD09B0879A63B5C2E47",
        ["locate/kimi-k2.json"] = "8D6C5890E7D3D13EBE592DC353CCC7787BBF2C9D4E212B465B089CF325707000",
        ["synthetic/deepseek-v2-lite.json"] = "8430A49492AB1FF4E1DFD34936A6D60AC5BEAF04B34F5ED80F93DD9FFD1278CD",
        ["synthetic/deepseek-v3.json"] = "0561BE0824F7DE9159FC34D8419F792B4FDDB48FE59F7CE9CCBC3FDD30A1585F",
        ["synthetic/kimi-k2.json"] = "1941BC038F0443F6460E6F682DB096D3279ADDF466D6C28137787F8305DB38D0",
        ["synth/v2-lite-tiny/0/False"] = "E3BF71DD8522FD3AB249223866E64C1B9D6BCC41133AB04B0119622A48CE06E8",
        ["synth/v2-lite-tiny/1/True"] = "7C783BD674361DC0E0C24CFEE4D605E3DB29585249A2B6474092E814AFB4AD99",
        ["synth/v3-fp8/1/False"] = "4D19C16441FC6F85DC5286C59EEF892BBEEB70C6B1AB1A76A21E7601A8FA9380",
        ["synth/v3-fp8/1/True"] = "D79625D5F8C4B570957F794F85948B476EA373CFDBA419F86C12820B8FB111F2",
        ["synth/v3-tiny/1/False"] = "15F203F7FA44F6E4C765022124DF2D4205DC46590EEF5694B68B69E681433C8D",
        ["synth/v3-tiny/1/True"] = "ABCE403BADB68097D31CE7A4C0E87B8003934C094436D7914D147C5B17EED17C",
        ["synth/v3-yarn-bf16/1/False"] = "EB8ADE73245D830E64FB8493737F52A69CA2E106E65F49726D46FD54AA2CA660",
        ["synth/v3-yarn-bf16/1/True"] = "7069A58F55C59D4330C74BFC78448C987F1FC4C437F7A192D90971EE68697163",
    };

    public static IEnumerable<object[]> Folders() => Fixtures.HfFolders();

    public static IEnumerable<object[]> Configs() =>
        new[] { "deepseek-v3.json", "deepseek-v2-lite.json", "kimi-k2.json" }.Select(f => new object[] { f });

    private static string Sha(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes));

    private static string Sha(string text) => Sha(Encoding.UTF8.GetBytes(text));

    private readonly List<string> _mismatches = [];

    private void Check(string key, string actual)
    {
        if (!Golden.TryGetValue(key, out string? want) || want != actual)
            _mismatches.Add($"[\"{key}\"] = \"{actual}\",");
    }

    private void AssertNoMismatch() => Assert.True(_mismatches.Count == 0, string.Join("\n", _mismatches));

    [Theory]
    [MemberData(nameof(Folders))]
    public void Gguf_files_are_byte_identical(string fixture)
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf(fixture));
        foreach (GgufFileType t in Enum.GetValues<GgufFileType>())
        {
            using var ms = new MemoryStream();
            GgufExport.Build(w, t, tokenizerJson: null, name: "golden").WriteTo(ms);
            Check($"gguf/{fixture}/{t}", Sha(ms.ToArray()));
        }
        AssertNoMismatch();
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Hf_exports_are_byte_identical(string fixture)
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf(fixture));
        foreach (WeightFormat f in new[] { WeightFormat.BF16, WeightFormat.F32 })
        {
            using var dir = new TempDir();
            int n = HfExport.Write(w, dir.Path, f);
            Check($"hf/{fixture}/{f}", $"{n}:{Sha(File.ReadAllBytes(dir.File("model.safetensors")))}");
        }
        AssertNoMismatch();
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Enumerated_names_and_load_formats_are_unchanged(string fixture)
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf(fixture));
        var names = new StringBuilder();
        foreach ((string name, WeightMatrix? m, float[]? v) in w.Enumerate())
        {
            names.Append(name).Append(m is null ? $" [{v!.Length}]" : $" [{m.Rows}, {m.Cols}]");
            // the load-time conversion targets (MXFP4, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, IQ4_NL and IQ4_XS are formats GGUF
            // files are read in, not a --dtype)
            foreach (WeightFormat f in Enum.GetValues<WeightFormat>().Where(f => f is not (WeightFormat.Mxfp4 or WeightFormat.Q4_1 or WeightFormat.Q5_0
                                                                                         or WeightFormat.Q5_1 or WeightFormat.Q2_K or WeightFormat.Q3_K or WeightFormat.Q5_K
                                                                                         or WeightFormat.IQ4_NL or WeightFormat.IQ4_XS)))
                names.Append(' ').Append(WeightLoader.ConvertingSource.TargetFor(name, f));
            names.Append('\n');
        }
        Check($"enumerate/{fixture}", Sha(names.ToString()));
        AssertNoMismatch();
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Hf_to_f32_gguf_to_hf_keeps_every_tensor(string fixture)
    {
        // the GGUF drops the MTP modules and splits kv_b_proj; every other tensor comes back exactly, under its name
        using var dir = new TempDir();
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf(fixture));
        string gguf = dir.File("m.gguf"), back = Path.Combine(dir.Path, "back");
        GgufExport.Write(w, gguf, GgufFileType.F32, tokenizerJson: null);
        using (ModelWeights g = WeightLoader.Load(gguf))
            HfExport.Write(g, back, WeightFormat.F32);
        using ModelWeights r = WeightLoader.Load(back);
        var original = w.Enumerate().ToDictionary(t => t.Name, t => t.Matrix?.ToFloatArray() ?? t.Vector!, StringComparer.Ordinal);
        int n = 0;
        foreach ((string name, WeightMatrix? m, float[]? v) in r.Enumerate())
        {
            Assert.True(original.TryGetValue(name, out float[]? want), name);
            Assert.True(want.AsSpan().SequenceEqual(m?.ToFloatArray() ?? v!), name);
            n++;
        }
        int mtp = w.Mtp.Sum(m => w.Enumerate().Count(t => t.Name.StartsWith(ArchitectureDescriptor.DeepSeekV3.HfLayerPrefix(m.Layer.Index), StringComparison.Ordinal)));
        Assert.Equal(original.Count - mtp, n);
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Synthetic_checkpoints_are_byte_identical(string fixture)
    {
        ModelConfig c = ModelConfig.Load(Fixtures.Hf(fixture));
        foreach (ModelConfig v in new[] { c, c with { NumNextnPredictLayers = 1, TieWordEmbeddings = !c.TieWordEmbeddings } })
        {
            using var dir = new TempDir();
            SyntheticModel.Write(v, dir.Path, seed: 7);
            Check($"synth/{fixture}/{v.NumNextnPredictLayers}/{v.TieWordEmbeddings}", Sha(File.ReadAllBytes(dir.File("model.safetensors"))));
        }
        AssertNoMismatch();
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void Synthetic_tensor_lists_and_gguf_locations_are_unchanged(string config)
    {
        ModelConfig c = ModelConfig.Load(Path.Combine(Fixtures.Root, "configs", config));
        var shapes = new StringBuilder();
        var locations = new StringBuilder();
        foreach ((string name, long[] shape) in SyntheticModel.TensorShapes(c))
        {
            shapes.Append(name).Append(' ').Append(string.Join(",", shape)).Append('\n');
            locations.Append(name).Append(" -> ").Append(ArchitectureDescriptor.DeepSeekV3.Locate(name)?.ToString() ?? "none").Append('\n');
        }
        Check($"synthetic/{config}", Sha(shapes.ToString()));
        Check($"locate/{config}", Sha(locations.ToString()));
        AssertNoMismatch();
    }
}
