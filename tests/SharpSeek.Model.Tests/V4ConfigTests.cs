// DeepSeek-V4 configuration: config.json and deepseek4 GGUF metadata read to the same config, the released V4-Flash
// config's parameter counts against the published figures, cache sizes, and errors that name the field.
using SharpSeek.Formats.Gguf;
using SharpSeek.Model.V4;
using SharpSeek.Tests;
using Xunit;

namespace SharpSeek.Model.Tests;

public sealed class V4ConfigTests
{
    private static readonly string FlashConfig = Path.Combine(Fixtures.Root, "configs", "deepseek-v4-flash.json");
    private static readonly string TinyDir = Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4");

    [Fact]
    public void V4_flash_has_284B_parameters_and_13B_active()
    {
        V4Config c = V4Config.Load(FlashConfig);
        V4Stats s = V4Stats.Compute(c);
        Assert.Equal(43, c.NumHiddenLayers);
        Assert.Equal((2, 21, 20), (s.WindowLayers, s.CsaLayers, s.HcaLayers));
        Assert.InRange(s.ParametersTotal / 284e9, 0.99, 1.01);
        Assert.InRange(s.ParametersActive / 13e9, 0.96, 1.04);
        Assert.True(s.MtpParameters > 0);
    }

    [Fact]
    public void V4_flash_caches_a_tenth_of_V3s_latent_per_token_at_1M()
    {
        V4Config c = V4Config.Load(FlashConfig);
        double perToken = V4Stats.CacheBytesPerToken(c, 1 << 20);
        // 21 ratio-4 layers: (512 + 128) values per 4 tokens; 20 ratio-128 layers: 512 per 128 tokens; bf16
        double rows = 21 * (512 + 128) * 2 / 4.0 + 20 * 512 * 2 / 128.0;
        Assert.InRange(perToken, rows, rows * 1.01); // plus the windows and compressor states, negligible at 1M
        Assert.InRange(61.0 * 576 * 2 / perToken, 9, 11);
    }

    [Fact]
    public void Config_json_and_gguf_metadata_of_the_fixture_agree()
    {
        V4Config json = V4Config.Load(TinyDir);
        using GgufFile f = GgufFile.Open(Path.Combine(TinyDir, "model.gguf"));
        V4Config gguf = V4Gguf.ReadConfig(f);
        Assert.Equal(json.CompressRatios, gguf.CompressRatios);
        Assert.Equal(json.SwigluLimitRouted, gguf.SwigluLimitRouted);
        Assert.Equal(json.SwigluLimitShared, gguf.SwigluLimitShared);
        Assert.Equal((float)json.RmsNormEps, (float)gguf.RmsNormEps); // GGUF stores float32
        Assert.Equal((float)json.HcEps, (float)gguf.HcEps);
        Assert.Equal(json with { CompressRatios = [], SwigluLimitRouted = [], SwigluLimitShared = [], EosTokenIds = [], BosTokenId = null, MaxPositionEmbeddings = 0, HcEps = 0, RmsNormEps = 0 },
                     gguf with { CompressRatios = [], SwigluLimitRouted = [], SwigluLimitShared = [], EosTokenIds = [], BosTokenId = null, MaxPositionEmbeddings = 0, HcEps = 0, RmsNormEps = 0 });
    }

    [Theory]
    [InlineData("\"compress_ratios\": [0, 0, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 0]",
                "\"compress_ratios\": [0, 0, 4, 64, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 0]",
                "compress_ratios")]
    [InlineData("\"o_groups\": 8", "\"o_groups\": 7", "o_groups")]
    [InlineData("\"scoring_func\": \"sqrtsoftplus\"", "\"scoring_func\": \"sigmoid\"", "scoring_func")]
    [InlineData("\"hc_mult\": 4", "\"hc_mult\": 0", "hc_mult")]
    [InlineData("\"num_hash_layers\": 3", "\"num_hash_layers\": 44", "num_hash_layers")]
    public void Bad_fields_are_named(string from, string to, string field)
    {
        string json = File.ReadAllText(FlashConfig);
        Assert.Contains(from, json);
        var e = Assert.Throws<InvalidDataException>(() => V4Config.Parse(json.Replace(from, to), "flash.json"));
        Assert.Contains("flash.json", e.Message);
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void ModelConfig_points_v4_configs_to_V4Config()
    {
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(FlashConfig));
        Assert.Contains("V4Config", e.Message);
    }
}
