// tokenizer_config.json of a Hugging Face model directory: the BOS/EOS tokens, whether encoding adds them,
// and the Jinja chat template (also read from chat_template.jinja, where newer checkpoints keep it).
using System.Text.Json;

namespace SharpSeek.Tokenizer;

/// <summary>The fields of <c>tokenizer_config.json</c> that encoding and chat rendering use.</summary>
public sealed class TokenizerConfig
{
    /// <summary>Text of the beginning-of-sequence token (<c>bos_token</c>), or null.</summary>
    public string? BosToken { get; init; }

    /// <summary>Text of the end-of-sequence token (<c>eos_token</c>), or null.</summary>
    public string? EosToken { get; init; }

    /// <summary>Whether encoding with special tokens prepends BOS (<c>add_bos_token</c>, false when absent).</summary>
    public bool AddBosToken { get; init; }

    /// <summary>Whether encoding with special tokens appends EOS (<c>add_eos_token</c>, false when absent).</summary>
    public bool AddEosToken { get; init; }

    /// <summary>The Jinja source of the default chat template, or null.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Reads a tokenizer_config.json file, and chat_template.jinja beside it when the JSON has no template.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not valid JSON or a field has the wrong type.</exception>
    public static TokenizerConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"tokenizer config not found: {path}", path);
        using JsonDocument doc = TokenizerJson.ParseChecked(File.ReadAllBytes(path), path);
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: expected a JSON object at the top level");
        string? template = ReadTemplate(root, path);
        string jinja = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "chat_template.jinja");
        if (template is null && File.Exists(jinja))
            template = File.ReadAllText(jinja);
        return new TokenizerConfig
        {
            BosToken = ReadToken(root, "bos_token", path),
            EosToken = ReadToken(root, "eos_token", path),
            AddBosToken = ReadBool(root, "add_bos_token", path),
            AddEosToken = ReadBool(root, "add_eos_token", path),
            ChatTemplate = template,
        };
    }

    // "bos_token": "<s>" or {"__type": "AddedToken", "content": "<s>", ...} or null
    private static string? ReadToken(JsonElement root, string field, string path)
    {
        if (!root.TryGetProperty(field, out JsonElement e) || e.ValueKind == JsonValueKind.Null)
            return null;
        if (e.ValueKind == JsonValueKind.String)
            return e.GetString();
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("content", out JsonElement c) && c.ValueKind == JsonValueKind.String)
            return c.GetString();
        throw new InvalidDataException($"{path}: field '{field}' must be a string or an object with a string 'content'");
    }

    private static bool ReadBool(JsonElement root, string field, string path)
    {
        if (!root.TryGetProperty(field, out JsonElement e) || e.ValueKind == JsonValueKind.Null)
            return false;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{path}: field '{field}' must be true or false"),
        };
    }

    // "chat_template": "..." or [{"name": "default", "template": "..."}, ...]
    private static string? ReadTemplate(JsonElement root, string path)
    {
        if (!root.TryGetProperty("chat_template", out JsonElement e) || e.ValueKind == JsonValueKind.Null)
            return null;
        if (e.ValueKind == JsonValueKind.String)
            return e.GetString();
        if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement t in e.EnumerateArray())
            {
                if (t.ValueKind == JsonValueKind.Object && t.TryGetProperty("name", out JsonElement n) && n.ValueEquals("default")
                    && t.TryGetProperty("template", out JsonElement body) && body.ValueKind == JsonValueKind.String)
                    return body.GetString();
            }
            return null;
        }
        throw new InvalidDataException($"{path}: field 'chat_template' must be a string or a list of named templates");
    }
}
