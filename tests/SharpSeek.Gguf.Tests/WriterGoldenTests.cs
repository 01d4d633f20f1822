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
    // recorded with the writers of commit 94e1fff (before the descriptor; the synth/ entries from a checkout of it)
    private static readonly Dictionary<string, string> Golden = new(StringComparer.Ordinal)
    {
        ["enumerate/v2-lite-tiny"] = "7EF1097B6923634F07E0A3183DC3C0E6E1955022A95276DD217643C5E64670AE",
        ["enumerate/v3-fp8"] = "FC14A4A0552B6D176C3F8589D09E106931E406659E30E9D6B49869DA25CB5BC4",
        ["enumerate/v3-tiny"] = "D9F43E429605924B450548691E7F2312A0A4B3340E8C0D11452C41FB22854824",
        ["enumerate/v3-yarn-bf16"] = "BE8A23D165D3C8B8EA00FC4B821A089C50E683EB3ED0253FE0F21DFAC3A6AEE8",
        ["gguf/v2-lite-tiny/BF16"] = "5EABD9A55F4B171615154C14D676B4451EAE2D696E1B226048A1668A07F5C846",
        ["gguf/v2-lite-tiny/F32"] = "9F7FABFBB1642EA34CABCC39CF84A0F47C29EC7C8C14B89BF91C5F12BEEF1895",
        ["gguf/v2-lite-tiny/Q4_0"] = "D336A993B3A850835FC9E5E858557C5E6ECE47C9350DA9AACCD2097DC1E9FF8E",
        ["gguf/v2-lite-tiny/Q4_K_M"] = "B5F51EA9CC3D83A78549E65C716EAA9D246A1EADE89923F76B371AB68EB984D2",
        ["gguf/v2-lite-tiny/Q8_0"] = "E62E90E46575165DC100084402093908E5963ECF2530F246A768F335C65A1297",
        ["gguf/v3-fp8/BF16"] = "7C435E09D7F298ECAFDCEAA6A61CACB67525DB141EB94B2BD51019BA0EF509A6",
        ["gguf/v3-fp8/F32"] = "726E4D4D0B563E3538BE44A02E42FBC8BCD2B968D62C785DED3767E0A94D3862",
        ["gguf/v3-fp8/Q4_0"] = "83BF90A15782FFC15F91F0C8FDA2EF1782CA72B6129DF0B7955574E60E8ACD6B",
        ["gguf/v3-fp8/Q4_K_M"] = "88DBCAC956DA0D6FA15ABB51CCA267DD7649DDE62C2E735AFD36D29ACF21BE34",
        ["gguf/v3-fp8/Q8_0"] = "70A17E9CDB5ADB9421EA12B672D20B6673CC95DBC9F7CAD09F3123A4E027FC4E",
        ["gguf/v3-tiny/BF16"] = "EAD5719AAA934EFA6D5558BB33E9D17574147706ADB826A1D4FACFADE480427D",
        ["gguf/v3-tiny/F32"] = "A2DA422250859D7FC683263EC80D05CBD06E4BC2971FE9A27DED627CA2ED7672",
        ["gguf/v3-tiny/Q4_0"] = "C9AE5149AA4C84DD4E9B6C7BC4D6C4FC78E5FC3FD1C01A49A0A5B4BB76548EC6",
        ["gguf/v3-tiny/Q4_K_M"] = "7030FDC886707031461F96E8498A2E165B26B284A59187D3B0C54BF522552B0F",
        ["gguf/v3-tiny/Q8_0"] = "DBFD1DEBCC2BFA9676430077968392ADC23E12C68693736E947C7A6164057D49",
        ["gguf/v3-yarn-bf16/BF16"] = "E45980AC3272F3B7A0336BF3B5D4D0AA07AEDE605AFA7E3B1CAE08E9F32500C7",
        ["gguf/v3-yarn-bf16/F32"] = "FCBDA6200E7D3C5F4DD5A9D5802F7C41A8F21DBC26583E5FE0D2FD85D113DE75",
        ["gguf/v3-yarn-bf16/Q4_0"] = "0702A82695509301AE7FD2B8951190F6DEEF991CA5BD5A7F1EFE1C11D367BB6F",
        ["gguf/v3-yarn-bf16/Q4_K_M"] = "E9EE31E1AC31AD2913BBE1B50BD3516C2C90BADE33995B1C92935E4B1ABA7FE0",
        ["gguf/v3-yarn-bf16/Q8_0"] = "697BCB42CA67DD7DE05DC06CE6CC3F0DFEA78AF6C95581EF9E171D69B3A96F78",
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
            foreach (WeightFormat f in Enum.GetValues<WeightFormat>())
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
