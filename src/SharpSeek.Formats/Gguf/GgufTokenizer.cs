// The tokenizer section of a GGUF file as llama.cpp's converter writes it for byte-level BPE models
// (convert_hf_to_gguf.py _set_vocab_gpt2 + gguf-py SpecialVocab): tokenizer.ggml.model "gpt2", .pre (the
// pre-tokenizer name), .tokens (text by id), .token_type (1 normal, 3 control, 4 user-defined, 5 unused),
// .merges ("left right"), .bos_token_id / .eos_token_id, .add_bos_token / .add_eos_token, tokenizer.chat_template.
using System.Text.Json;
using SharpSeek.Tokenizer;

namespace SharpSeek.Formats.Gguf;

/// <summary>Reads and writes the GGUF tokenizer metadata.</summary>
public static class GgufTokenizer
{
    /// <summary>llama.cpp token types.</summary>
    public const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

    /// <summary>Builds our tokenizer from a GGUF file; null when the file carries no vocabulary.</summary>
    /// <exception cref="NotSupportedException">A tokenizer model or pre-tokenizer other than DeepSeek's byte-level BPE.</exception>
    /// <exception cref="InvalidDataException">Missing or inconsistent tokenizer keys (the message names the file and key).</exception>
    public static BpeTokenizer? Load(GgufFile f)
    {
        string? model = f.GetString("tokenizer.ggml.model");
        if (model is null or "none" or "no_vocab")
            return null;
        if (model != "gpt2")
            throw new NotSupportedException($"{f.FilePath}: tokenizer.ggml.model '{model}' is not supported (only gpt2 byte-level BPE)");
        string[] tokens = f.GetStringArray("tokenizer.ggml.tokens") ?? throw new InvalidDataException($"{f.FilePath}: key 'tokenizer.ggml.tokens' is missing");
        string[] merges = f.GetStringArray("tokenizer.ggml.merges") ?? throw new InvalidDataException($"{f.FilePath}: key 'tokenizer.ggml.merges' is missing");
        int[]? types = f.GetInt32Array("tokenizer.ggml.token_type");
        string pre = f.GetString("tokenizer.ggml.pre") ?? "default";
        PreTokenizerKind kind;
        try
        {
            kind = BpeTokenizer.ParsePreTokenizer(pre);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"{f.FilePath}: tokenizer.ggml.pre: {e.Message}", e);
        }
        long? bos = f.GetInteger("tokenizer.ggml.bos_token_id", 0, tokens.Length - 1);
        long? eos = f.GetInteger("tokenizer.ggml.eos_token_id", 0, tokens.Length - 1);
        var config = new TokenizerConfig
        {
            BosToken = bos is long b ? tokens[b] : null,
            EosToken = eos is long en ? tokens[en] : null,
            AddBosToken = f.GetBool("tokenizer.ggml.add_bos_token") ?? false,
            AddEosToken = f.GetBool("tokenizer.ggml.add_eos_token") ?? false,
            ChatTemplate = f.GetString("tokenizer.chat_template"),
        };
        try
        {
            return BpeTokenizer.CreateFromGguf(tokens, merges, types, kind, config);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{f.FilePath}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Adds the tokenizer keys for the Hugging Face <c>tokenizer.json</c> at <paramref name="tokenizerJson"/>
    /// (with <c>tokenizer_config.json</c> beside it when present, for BOS/EOS, add_bos_token and the chat template),
    /// padded with "[PAD{id}]" unused tokens to <paramref name="vocabSize"/> ids as llama.cpp's converter does.
    /// <paramref name="bosId"/> and <paramref name="eosId"/> (config.json's) are used when tokenizer_config.json names none.
    /// </summary>
    public static void Write(GgufWriter w, string tokenizerJson, int vocabSize, int? bosId, int? eosId)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(tokenizerJson));
        BpeTokenizer tok = dir is not null && Path.GetFileName(tokenizerJson) == "tokenizer.json" && File.Exists(Path.Combine(dir, "tokenizer_config.json"))
            ? BpeTokenizer.LoadFromDirectory(dir)
            : BpeTokenizer.Load(tokenizerJson);
        (Dictionary<int, string> byId, List<string> merges) = ReadVocabAndMerges(tokenizerJson);
        foreach (AddedToken t in tok.AddedTokens)
            byId[t.Id] = t.Content;
        int maxId = byId.Count == 0 ? -1 : byId.Keys.Max();
        if (maxId >= vocabSize)
            throw new InvalidDataException($"{tokenizerJson}: token id {maxId} is outside the model's vocabulary of {vocabSize}");
        var special = new Dictionary<int, bool>();
        foreach (AddedToken t in tok.AddedTokens)
            special[t.Id] = t.Special;
        var tokens = new string[vocabSize];
        var types = new int[vocabSize];
        for (int id = 0; id < vocabSize; id++)
        {
            if (!byId.TryGetValue(id, out string? text))
            {
                tokens[id] = $"[PAD{id}]";
                types[id] = Unused;
                continue;
            }
            tokens[id] = text;
            types[id] = special.TryGetValue(id, out bool s) ? (s ? Control : UserDefined) : Normal;
        }
        w.Add("tokenizer.ggml.model", "gpt2");
        w.Add("tokenizer.ggml.pre", tok.PreTokenizer == PreTokenizerKind.DeepSeekV3 ? "deepseek-v3" : "deepseek-llm");
        w.Add("tokenizer.ggml.tokens", GgufValue.Array(tokens));
        w.Add("tokenizer.ggml.token_type", GgufValue.Array(types));
        w.Add("tokenizer.ggml.merges", GgufValue.Array(merges.ToArray()));
        int? bos = tok.BosId ?? bosId, eos = tok.EosId ?? eosId;
        if (bos is int b)
            w.Add("tokenizer.ggml.bos_token_id", (uint)b);
        if (eos is int e)
            w.Add("tokenizer.ggml.eos_token_id", (uint)e);
        if (tok.Config is { } c)
        {
            w.Add("tokenizer.ggml.add_bos_token", c.AddBosToken);
            w.Add("tokenizer.ggml.add_eos_token", c.AddEosToken);
            if (c.ChatTemplate is string template)
                w.Add("tokenizer.chat_template", template);
        }
    }

    // model.vocab (text -> id) and model.merges ("a b" strings or ["a", "b"] pairs), in the file's order
    private static (Dictionary<int, string>, List<string>) ReadVocabAndMerges(string path)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
        JsonElement model = doc.RootElement.GetProperty("model");
        var byId = new Dictionary<int, string>();
        foreach (JsonProperty p in model.GetProperty("vocab").EnumerateObject())
            byId.TryAdd(p.Value.GetInt32(), p.Name);
        var merges = new List<string>();
        foreach (JsonElement m in model.GetProperty("merges").EnumerateArray())
        {
            if (m.ValueKind == JsonValueKind.String)
            {
                string s = m.GetString()!;
                if (!s.StartsWith("#version", StringComparison.Ordinal))
                    merges.Add(s);
            }
            else
            {
                merges.Add(m[0].GetString() + " " + m[1].GetString());
            }
        }
        return (byId, merges);
    }
}
