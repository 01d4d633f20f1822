// Shared test inputs: the DeepSeek-V3 tokenizer (ours and the Rust reference), loaded once per test run.
using System.Text.Json;
using SharpSeek.Tests;

namespace SharpSeek.Tokenizer.Tests;

internal static class TestData
{
    public static string TokenizerDir => Path.Combine(Fixtures.Root, "deepseek-v3-tokenizer");

    public static string TokenizerJsonPath => Path.Combine(TokenizerDir, "tokenizer.json");

    private static readonly Lazy<BpeTokenizer> s_v3 = new(() => BpeTokenizer.LoadFromDirectory(TokenizerDir));

    /// <summary>Our tokenizer on the V3 tokenizer.json + tokenizer_config.json.</summary>
    public static BpeTokenizer V3 => s_v3.Value;

    public static JsonElement ReadJson(params string[] relative)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine([Fixtures.Root, .. relative])));
        return doc.RootElement.Clone();
    }

    public static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();
}
