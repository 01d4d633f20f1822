// Reader for Hugging Face tokenizer.json files of byte-level BPE tokenizers (HF tokenizers serialization:
// model {type BPE, vocab, merges, ignore_merges}, added_tokens, normalizer, pre_tokenizer, decoder).
// Anything that would change the ids and that this implementation does not do is refused with the field named.
using System.Text.Json;

namespace SharpSeek.Tokenizer;

internal static class TokenizerJson
{
    public sealed record Contents(
        Dictionary<string, int> Vocab,
        List<(string Left, string Right)> Merges,
        bool IgnoreMerges,
        List<AddedToken> AddedTokens,
        PreTokenizerKind PreTokenizer);

    // The pre_tokenizer steps of the two DeepSeek families, as "Split|regex|behavior|invert", "Digits|individual"
    // and "ByteLevel|add_prefix_space|use_regex".
    internal static readonly string[] V3Steps =
    [
        .. PreTokenizer.DeepSeekV3SplitPatterns.Select(pattern => $"Split|{pattern}|Isolated|False"),
        "ByteLevel|False|False",
    ];

    internal static readonly string[] LlmSteps =
    [
        "Split|[\r\n]|Isolated|False",
        "Split|\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377"
            + "\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5"
            + "\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D"
            + "\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4"
            + "\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D"
            + "\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4"
            + "\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06"
            + "\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB"
            + "\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+|Isolated|False",
        "Split|\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+|Isolated|False",
        "Split|\\s+$|Isolated|False",
        "Split|[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+|Isolated|False",
        "Digits|True",
        "ByteLevel|False|False",
    ];

    public static Contents Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"tokenizer file not found: {path}", path);
        byte[] bytes = File.ReadAllBytes(path);
        // JsonDocument checks UTF-8 only where it unescapes: a property name with invalid bytes would fail on first use
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw new InvalidDataException($"{path}: not valid UTF-8");
        using JsonDocument doc = ParseChecked(bytes, path);
        return Read(doc, path);
    }

    /// <summary>Parses JSON and reads every property name and string once, so that text System.Text.Json would reject
    /// only when read (invalid UTF-8, an escaped unpaired surrogate such as "\ud800") is refused here, not wherever a
    /// string is read later. Errors are <see cref="InvalidDataException"/> naming <paramref name="source"/>.</summary>
    internal static JsonDocument ParseChecked(ReadOnlyMemory<byte> utf8, string source) => ParseChecked(() => JsonDocument.Parse(utf8), source);

    /// <inheritdoc cref="ParseChecked(ReadOnlyMemory{byte}, string)"/>
    internal static JsonDocument ParseChecked(string json, string source) => ParseChecked(() => JsonDocument.Parse(json), source);

    private static JsonDocument ParseChecked(Func<JsonDocument> parse, string source)
    {
        JsonDocument doc;
        try
        {
            doc = parse();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
        try
        {
            Unescape(doc.RootElement);
            return doc;
        }
        catch (InvalidOperationException e)
        {
            doc.Dispose();
            throw new InvalidDataException($"{source}: not valid JSON: a string is not valid text: {e.Message}", e);
        }
    }

    // every property name and string once, so unescaping errors surface here rather than wherever a string is read
    internal static void Unescape(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (JsonProperty p in e.EnumerateObject())
                {
                    _ = p.Name;
                    Unescape(p.Value);
                }
                break;
            case JsonValueKind.Array:
                foreach (JsonElement x in e.EnumerateArray())
                    Unescape(x);
                break;
            case JsonValueKind.String:
                e.GetString();
                break;
        }
    }

    private static Contents Read(JsonDocument doc, string path)
    {
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: expected a JSON object at the top level");
        if (!root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: missing object field 'model'");
        if (model.TryGetProperty("type", out JsonElement type) && !IsString(type, "BPE"))
            throw new NotSupportedException($"{path}: model.type '{type}' is not supported (only BPE)");
        CheckModelOptions(model, path);
        CheckNormalizer(root, path);
        CheckDecoder(root, path);
        PreTokenizerKind kind = ReadPreTokenizer(root, path);
        Dictionary<string, int> vocab = ReadVocab(model, path);
        List<(string, string)> merges = ReadMerges(model, path);
        bool ignoreMerges = model.TryGetProperty("ignore_merges", out JsonElement im) && im.ValueKind == JsonValueKind.True;
        List<AddedToken> added = ReadAddedTokens(root, path);
        CheckIds(vocab, added, path);
        return new Contents(vocab, merges, ignoreMerges, added, kind);
    }

    private static void CheckModelOptions(JsonElement model, string path)
    {
        if (model.TryGetProperty("dropout", out JsonElement d) && d.ValueKind == JsonValueKind.Number && !(d.TryGetDouble(out double p) && p == 0))
            throw new NotSupportedException($"{path}: model.dropout {d} is not supported");
        foreach (string field in (string[])["continuing_subword_prefix", "end_of_word_suffix"])
        {
            if (model.TryGetProperty(field, out JsonElement e) && e.ValueKind == JsonValueKind.String && e.GetString()!.Length > 0)
                throw new NotSupportedException($"{path}: model.{field} is not supported");
        }
        if (model.TryGetProperty("byte_fallback", out JsonElement bf) && bf.ValueKind == JsonValueKind.True)
            throw new NotSupportedException($"{path}: model.byte_fallback is not supported (byte-level BPE needs none)");
    }

    private static void CheckNormalizer(JsonElement root, string path)
    {
        if (!root.TryGetProperty("normalizer", out JsonElement n) || n.ValueKind == JsonValueKind.Null)
            return;
        if (n.ValueKind == JsonValueKind.Object && n.TryGetProperty("type", out JsonElement t) && IsString(t, "Sequence")
            && n.TryGetProperty("normalizers", out JsonElement list) && list.ValueKind == JsonValueKind.Array
            && list.GetArrayLength() == 0)
            return;
        throw new NotSupportedException($"{path}: normalizer {Shorten(n)} is not supported (only none)");
    }

    private static void CheckDecoder(JsonElement root, string path)
    {
        if (!root.TryGetProperty("decoder", out JsonElement d) || d.ValueKind == JsonValueKind.Null)
            return;
        if (d.ValueKind == JsonValueKind.Object && d.TryGetProperty("type", out JsonElement t) && IsString(t, "ByteLevel"))
            return;
        throw new NotSupportedException($"{path}: decoder {Shorten(d)} is not supported (only ByteLevel)");
    }

    private static PreTokenizerKind ReadPreTokenizer(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out JsonElement p) || p.ValueKind != JsonValueKind.Object)
            throw new NotSupportedException($"{path}: missing 'pre_tokenizer' (a DeepSeek Sequence of Split steps is expected)");
        var steps = new List<string>();
        if (p.TryGetProperty("type", out JsonElement t) && IsString(t, "Sequence")
            && p.TryGetProperty("pretokenizers", out JsonElement list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement step in list.EnumerateArray())
                steps.Add(Describe(step));
        }
        if (steps.SequenceEqual(V3Steps))
            return PreTokenizerKind.DeepSeekV3;
        if (steps.SequenceEqual(LlmSteps))
            return PreTokenizerKind.DeepSeekLlm;
        throw new NotSupportedException(
            $"{path}: pre_tokenizer {Shorten(p)} is not one of the DeepSeek pre-tokenizers (deepseek-v3, deepseek-llm)");
    }

    private static string Describe(JsonElement step)
    {
        if (step.ValueKind != JsonValueKind.Object)
            return step.ValueKind.ToString();
        string type = Str(step, "type");
        return type switch
        {
            "Split" => string.Join('|', "Split",
                step.TryGetProperty("pattern", out JsonElement pat) && pat.ValueKind == JsonValueKind.Object ? Str(pat, "Regex") : "",
                Str(step, "behavior"), Bool(step, "invert")),
            "Digits" => string.Join('|', "Digits", Bool(step, "individual_digits")),
            "ByteLevel" => string.Join('|', "ByteLevel", Bool(step, "add_prefix_space"), Bool(step, "use_regex")),
            _ => type,
        };

        static string Str(JsonElement e, string name) =>
            e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

        static string Bool(JsonElement e, string name) =>
            (e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.True).ToString();
    }

    private static Dictionary<string, int> ReadVocab(JsonElement model, string path)
    {
        if (!model.TryGetProperty("vocab", out JsonElement v) || v.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: missing object field 'model.vocab'");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty e in v.EnumerateObject())
        {
            if (e.Value.ValueKind != JsonValueKind.Number || !e.Value.TryGetInt32(out int id) || id < 0)
                throw new InvalidDataException($"{path}: model.vocab['{e.Name}'] must be a non-negative integer id");
            vocab[e.Name] = id;
        }
        return vocab;
    }

    // ids index arrays of the largest id + 1: a sparse id far beyond the number of tokens would size them by the file's
    // word rather than its contents (HF vocabularies are dense: DeepSeek-V3's 128815 ids hold 128815 tokens)
    private static void CheckIds(Dictionary<string, int> vocab, List<AddedToken> added, string path)
    {
        long limit = (long)vocab.Count + added.Count + MaxIdGap;
        foreach ((string token, int id) in vocab)
        {
            if (id >= limit)
                throw new InvalidDataException($"{path}: model.vocab['{token}'] has id {id}, beyond the {vocab.Count + added.Count} tokens by more than {MaxIdGap}");
        }
        foreach (AddedToken t in added)
        {
            if (t.Id >= limit)
                throw new InvalidDataException($"{path}: added token '{t.Content}' has id {t.Id}, beyond the {vocab.Count + added.Count} tokens by more than {MaxIdGap}");
        }
    }

    // how far ids may run past the token count (unused ids a model pads its vocabulary with)
    private const int MaxIdGap = 1 << 20;

    // "merges": ["a b", ...] (legacy, "#version" lines skipped) or [["a", "b"], ...]
    private static List<(string, string)> ReadMerges(JsonElement model, string path)
    {
        if (!model.TryGetProperty("merges", out JsonElement m) || m.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{path}: missing array field 'model.merges'");
        var merges = new List<(string, string)>(m.GetArrayLength());
        int i = 0;
        foreach (JsonElement e in m.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String)
            {
                string line = e.GetString()!;
                if (!line.StartsWith("#version", StringComparison.Ordinal))
                {
                    string[] parts = line.Split(' ');
                    if (parts.Length != 2)
                        throw new InvalidDataException($"{path}: model.merges[{i}] '{line}' is not two tokens separated by one space");
                    merges.Add((parts[0], parts[1]));
                }
            }
            else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2
                     && e[0].ValueKind == JsonValueKind.String && e[1].ValueKind == JsonValueKind.String)
            {
                merges.Add((e[0].GetString()!, e[1].GetString()!));
            }
            else
            {
                throw new InvalidDataException($"{path}: model.merges[{i}] must be \"a b\" or [\"a\", \"b\"]");
            }
            i++;
        }
        return merges;
    }

    private static List<AddedToken> ReadAddedTokens(JsonElement root, string path)
    {
        var tokens = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out JsonElement list) || list.ValueKind == JsonValueKind.Null)
            return tokens;
        if (list.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{path}: field 'added_tokens' must be an array");
        int i = 0;
        foreach (JsonElement e in list.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Object
                || !e.TryGetProperty("id", out JsonElement id) || id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out int idValue) || idValue < 0
                || !e.TryGetProperty("content", out JsonElement content) || content.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{path}: added_tokens[{i}] needs a non-negative integer 'id' and a string 'content'");
            // defaults of HF AddedToken: normalized true, the rest false
            tokens.Add(new AddedToken(idValue, content.GetString()!,
                Special: Flag(e, "special", false), LStrip: Flag(e, "lstrip", false), RStrip: Flag(e, "rstrip", false),
                SingleWord: Flag(e, "single_word", false), Normalized: Flag(e, "normalized", true)));
            i++;
        }
        return tokens;

        static bool Flag(JsonElement e, string name, bool missing) =>
            e.TryGetProperty(name, out JsonElement v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? v.ValueKind == JsonValueKind.True
                : missing;
    }

    private static bool IsString(JsonElement e, string value) => e.ValueKind == JsonValueKind.String && e.ValueEquals(value);

    private static string Shorten(JsonElement e)
    {
        string s = e.GetRawText();
        return s.Length <= 120 ? s : s[..117] + "...";
    }
}
