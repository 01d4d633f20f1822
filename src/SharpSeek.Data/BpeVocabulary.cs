// A byte-level BPE vocabulary learned by BpeTrainer, and its Hugging Face tokenizer.json + tokenizer_config.json
// form (the same sections as DeepSeek-V3's files). Encoding and decoding with it are SharpSeek.Tokenizer's
// BpeTokenizer: CreateTokenizer builds one in memory, BpeTokenizer.LoadFromDirectory reads the written files.
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpSeek.Tokenizer;

namespace SharpSeek.Data;

/// <summary>A trained byte-level BPE vocabulary: tokens, merges and special tokens, with DeepSeek-V3's pre-tokenizer.</summary>
public sealed class BpeVocabulary
{
    private readonly string[] _tokens;                  // model.vocab by id: leading specials, bytes, learned tokens
    private readonly (int Left, int Right)[] _merges;   // rank order, as ids into _tokens

    internal BpeVocabulary(List<string> tokens, List<(int Left, int Right)> merges, List<AddedToken> addedTokens)
    {
        _tokens = tokens.ToArray();
        _merges = merges.ToArray();
        AddedTokens = addedTokens.OrderBy(a => a.Id).ToArray();
        VocabSize = Math.Max(_tokens.Length, AddedTokens.Count == 0 ? 0 : AddedTokens[^1].Id + 1);
    }

    /// <summary>Number of token ids (BPE vocabulary plus the added tokens after it).</summary>
    public int VocabSize { get; }

    /// <summary>Number of merges.</summary>
    public int MergeCount => _merges.Length;

    /// <summary>The BPE vocabulary (tokenizer.json model.vocab) by id, in byte-level form ("Ġthe").</summary>
    public IReadOnlyList<string> Tokens => _tokens;

    /// <summary>The merges in rank order, as pairs of ids into <see cref="Tokens"/>.</summary>
    public IReadOnlyList<(int Left, int Right)> Merges => _merges;

    /// <summary>Special tokens by id (tokenizer.json added_tokens).</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>A tokenizer over this vocabulary with DeepSeek-V3's pre-tokenizer and the BOS/EOS settings that
    /// <see cref="WriteHuggingFace"/> writes: the same ids as <see cref="BpeTokenizer.LoadFromDirectory"/> on its files.</summary>
    public BpeTokenizer CreateTokenizer()
    {
        var vocab = new Dictionary<string, int>(_tokens.Length, StringComparer.Ordinal);
        for (int id = 0; id < _tokens.Length; id++)
            vocab.Add(_tokens[id], id);
        var merges = new (string, string)[_merges.Length];
        for (int rank = 0; rank < _merges.Length; rank++)
            merges[rank] = (_tokens[_merges[rank].Left], _tokens[_merges[rank].Right]);
        var config = new TokenizerConfig
        {
            BosToken = SpecialTokens.BeginOfSentence,
            EosToken = SpecialTokens.EndOfSentence,
            AddBosToken = true,
            ChatTemplate = ChatTemplate,
        };
        return BpeTokenizer.Create(vocab, merges, AddedTokens, PreTokenizerKind.DeepSeekV3, config);
    }

    /// <summary>DeepSeek-V3's chat template (tokenizer_config.json chat_template), verbatim.</summary>
    public static string ChatTemplate { get; } = ReadChatTemplate();

    /// <summary>
    /// Writes tokenizer.json and tokenizer_config.json into <paramref name="directory"/>, laid out as DeepSeek-V3's:
    /// the same normalizer, pre_tokenizer, post_processor and decoder, a BPE model with byte-level vocabulary and
    /// merges, added_tokens; the config carries V3's chat template, BOS/EOS/pad tokens and add_bos_token true.
    /// </summary>
    public void WriteHuggingFace(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        WriteJson(Path.Combine(directory, "tokenizer.json"), WriteTokenizerJson);
        WriteJson(Path.Combine(directory, "tokenizer_config.json"), WriteConfigJson);
    }

    private static void WriteJson(string path, Action<Utf8JsonWriter> write)
    {
        string temp = path + ".tmp";
        using (FileStream f = File.Create(temp))
        {
            var options = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            using var writer = new Utf8JsonWriter(f, options);
            write(writer);
            writer.Flush();
            f.WriteByte((byte)'\n');
        }
        File.Move(temp, path, overwrite: true);
    }

    private void WriteTokenizerJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        foreach (AddedToken a in AddedTokens)
        {
            w.WriteStartObject();
            w.WriteNumber("id", a.Id);
            w.WriteString("content", a.Content);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("special", a.Special);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WritePropertyName("normalizer");
        NormalizerJson().WriteTo(w);
        w.WritePropertyName("pre_tokenizer");
        PreTokenizerJson().WriteTo(w);
        w.WritePropertyName("post_processor");
        ByteLevelJson(addPrefixSpace: true, trimOffsets: false).WriteTo(w);
        w.WritePropertyName("decoder");
        ByteLevelJson(addPrefixSpace: true, trimOffsets: true).WriteTo(w);
        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteNull("continuing_subword_prefix");
        w.WriteNull("end_of_word_suffix");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", false);
        w.WriteStartObject("vocab");
        for (int id = 0; id < _tokens.Length; id++)
            w.WriteNumber(_tokens[id], id);
        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach ((int left, int right) in _merges)
            w.WriteStringValue(_tokens[left] + " " + _tokens[right]);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private void WriteConfigJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteBoolean("add_bos_token", true);
        w.WriteBoolean("add_eos_token", false);
        WriteAddedToken(w, "bos_token", SpecialTokens.BeginOfSentence);
        w.WriteBoolean("clean_up_tokenization_spaces", false);
        WriteAddedToken(w, "eos_token", SpecialTokens.EndOfSentence);
        w.WriteBoolean("legacy", true);
        w.WriteNumber("model_max_length", 131072);
        WriteAddedToken(w, "pad_token", SpecialTokens.Pad);
        w.WriteStartObject("sp_model_kwargs");
        w.WriteEndObject();
        w.WriteNull("unk_token");
        w.WriteString("tokenizer_class", "LlamaTokenizerFast");
        w.WriteString("chat_template", ChatTemplate);
        w.WriteEndObject();
    }

    private void WriteAddedToken(Utf8JsonWriter w, string name, string content)
    {
        if (!AddedTokens.Any(a => a.Content == content)) // the config may only name tokens the vocabulary has
            throw new KeyNotFoundException($"the tokenizer has no special token '{content}'");
        w.WriteStartObject(name);
        w.WriteString("__type", "AddedToken");
        w.WriteString("content", content);
        w.WriteBoolean("lstrip", false);
        w.WriteBoolean("normalized", true);
        w.WriteBoolean("rstrip", false);
        w.WriteBoolean("single_word", false);
        w.WriteEndObject();
    }

    // DeepSeek-V3's normalizer section (an empty Sequence)
    private static JsonObject NormalizerJson() => new() { ["type"] = "Sequence", ["normalizers"] = new JsonArray() };

    // DeepSeek-V3's pre_tokenizer section: the three Splits of its PreTokenizer, then ByteLevel
    private static JsonObject PreTokenizerJson()
    {
        var steps = new JsonArray();
        foreach (string pattern in PreTokenizer.DeepSeekV3SplitPatterns)
        {
            steps.Add(new JsonObject
            {
                ["type"] = "Split",
                ["pattern"] = new JsonObject { ["Regex"] = pattern },
                ["behavior"] = "Isolated",
                ["invert"] = false,
            });
        }
        steps.Add(new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false });
        return new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = steps };
    }

    private static JsonObject ByteLevelJson(bool addPrefixSpace, bool trimOffsets) => new()
    {
        ["type"] = "ByteLevel",
        ["add_prefix_space"] = addPrefixSpace,
        ["trim_offsets"] = trimOffsets,
        ["use_regex"] = true,
    };

    private static string ReadChatTemplate()
    {
        using Stream s = typeof(BpeVocabulary).Assembly.GetManifestResourceStream("SharpSeek.Data.deepseek-v3-chat-template.jinja")
            ?? throw new InvalidOperationException("embedded chat template missing from SharpSeek.Data");
        using var reader = new StreamReader(s, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
