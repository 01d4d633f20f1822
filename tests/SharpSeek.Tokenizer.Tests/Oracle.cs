// The Rust reference: Hugging Face tokenizers 0.22 through Tokenizers.DotNet, in this test project only.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpSeek.Tokenizer.Tests;

internal static class Oracle
{
    private static readonly Lazy<Tokenizers.DotNet.Tokenizer> s_v3 = new(() => new(TestData.TokenizerJsonPath));
    private static readonly Lazy<string> s_llmJsonPath = new(WriteLlmVariant);
    private static readonly Lazy<Tokenizers.DotNet.Tokenizer> s_llm = new(() => new(s_llmJsonPath.Value));
    private static readonly Lazy<BpeTokenizer> s_oursLlm = new(() => BpeTokenizer.Load(s_llmJsonPath.Value));

    /// <summary>The reference on the DeepSeek-V3 tokenizer.json.</summary>
    public static Tokenizers.DotNet.Tokenizer V3 => s_v3.Value;

    /// <summary>The reference on the V3 vocabulary with the deepseek-llm pre-tokenizer.</summary>
    public static Tokenizers.DotNet.Tokenizer Llm => s_llm.Value;

    /// <summary>Ours on the same file as <see cref="Llm"/>.</summary>
    public static BpeTokenizer OursLlm => s_oursLlm.Value;

    public static int[] Encode(Tokenizers.DotNet.Tokenizer t, string text) => t.Encode(text).Select(u => (int)u).ToArray();

    /// <summary>The pre_tokenizer JSON of a kind, rebuilt from the step descriptions the loader recognises.</summary>
    public static JsonNode PreTokenizerJson(PreTokenizerKind kind)
    {
        var steps = new JsonArray();
        foreach (string step in kind == PreTokenizerKind.DeepSeekV3 ? TokenizerJson.V3Steps : TokenizerJson.LlmSteps)
        {
            string[] f = step.Split('|');
            steps.Add(f[0] switch
            {
                "Split" => new JsonObject
                {
                    ["type"] = "Split",
                    ["pattern"] = new JsonObject { ["Regex"] = string.Join('|', f[1..^2]) },
                    ["behavior"] = "Isolated",
                    ["invert"] = false,
                },
                "Digits" => new JsonObject { ["type"] = "Digits", ["individual_digits"] = true },
                _ => new JsonObject
                {
                    ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false,
                },
            });
        }
        return new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = steps };
    }

    /// <summary>Writes a tokenizer.json to a temporary file and returns its path.</summary>
    public static string WriteTemp(JsonNode root)
    {
        string path = Path.Combine(Path.GetTempPath(), $"sharpseek-tok-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, root.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        return path;
    }

    private static string WriteLlmVariant()
    {
        JsonNode root = JsonNode.Parse(File.ReadAllText(TestData.TokenizerJsonPath))!;
        root["pre_tokenizer"] = PreTokenizerJson(PreTokenizerKind.DeepSeekLlm);
        return WriteTemp(root);
    }
}
