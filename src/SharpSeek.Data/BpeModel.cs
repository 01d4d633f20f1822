// A byte-level BPE vocabulary with DeepSeek-V3's pre-tokenizer: the trainer's output, its Hugging Face
// tokenizer.json + tokenizer_config.json form (same sections as DeepSeek-V3's files), and a reference encoder
// used to write token shards. The runtime tokenizer of the engine lives in SharpSeek.Tokenizer.
// Encoding follows Hugging Face tokenizers src/models/bpe/word.rs merge_all: within a pre-token, repeatedly
// merge the adjacent pair of lowest merge rank, leftmost first. Text is plain text: special-token strings in it
// are not recognised.
using System.Collections.Concurrent;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpSeek.Data;

/// <summary>A special token with its id, as listed in tokenizer.json's added_tokens.</summary>
public sealed record AddedToken(int Id, string Content, bool Special);

/// <summary>A byte-level BPE tokenizer model: vocabulary, merges and special tokens.</summary>
public sealed class BpeModel
{
    private readonly string[] _tokens;                      // id -> vocabulary string or special token text
    private readonly Dictionary<string, int> _vocab;        // BPE vocabulary (model.vocab)
    private readonly Dictionary<string, int> _added;        // added token text -> id
    private readonly (int Left, int Right)[] _merges;
    private readonly Dictionary<long, (int Rank, int Result)> _mergeRanks;
    private readonly int[] _byteToId = new int[256];
    private readonly bool[] _isAdded;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    private BpeModel(Dictionary<string, int> vocab, List<(int, int)> merges, List<AddedToken> added, string source)
    {
        int size = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        foreach (AddedToken a in added)
            size = Math.Max(size, a.Id + 1);
        _tokens = new string[size];
        _isAdded = new bool[size];
        foreach ((string token, int id) in vocab)
        {
            if (id < 0 || _tokens[id] is not null)
                throw new InvalidDataException($"{source}: vocabulary id {id} ('{token}') is negative or used twice");
            _tokens[id] = token;
        }
        _added = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AddedToken a in added)
        {
            if (a.Id < 0 || (_tokens[a.Id] is not null && _tokens[a.Id] != a.Content))
                throw new InvalidDataException($"{source}: added token {a.Id} '{a.Content}' clashes with '{_tokens[a.Id]}'");
            _tokens[a.Id] = a.Content;
            _isAdded[a.Id] = true;
            _added[a.Content] = a.Id;
        }
        for (int id = 0; id < size; id++)
        {
            if (_tokens[id] is null)
                throw new InvalidDataException($"{source}: no token has id {id} (ids must be 0..{size - 1} without gaps)");
        }
        for (int b = 0; b < 256; b++)
        {
            string s = ByteLevel.ToChar((byte)b).ToString();
            if (!vocab.TryGetValue(s, out _byteToId[b]))
                throw new InvalidDataException($"{source}: vocabulary lacks the byte token '{s}' (byte 0x{b:x2})");
        }
        _vocab = vocab;
        _merges = merges.ToArray();
        _mergeRanks = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            (int left, int right) = merges[rank];
            string merged = _tokens[left] + _tokens[right];
            if (!vocab.TryGetValue(merged, out int result))
                throw new InvalidDataException($"{source}: merge {rank} '{_tokens[left]} {_tokens[right]}' makes '{merged}', which is not in the vocabulary");
            _mergeRanks.TryAdd(Key(left, right), (rank, result));
        }
        AddedTokens = added.OrderBy(a => a.Id).ToArray();
    }

    /// <summary>Number of token ids (BPE vocabulary plus added tokens).</summary>
    public int VocabSize => _tokens.Length;

    /// <summary>Number of merges.</summary>
    public int MergeCount => _merges.Length;

    /// <summary>The merges in rank order, as token id pairs.</summary>
    public IReadOnlyList<(int Left, int Right)> Merges => _merges;

    /// <summary>Special tokens by id.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The vocabulary string (byte-level characters) or special token text of <paramref name="id"/>.</summary>
    public string IdToToken(int id) => (uint)id < (uint)_tokens.Length ? _tokens[id]
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside 0..{_tokens.Length - 1}");

    /// <summary>The id of a vocabulary string or special token text, or -1.</summary>
    public int TokenToId(string token) => _added.TryGetValue(token, out int id) || _vocab.TryGetValue(token, out id) ? id : -1;

    /// <summary>The id of a special token's text; throws <see cref="KeyNotFoundException"/> when the model has none.</summary>
    public int SpecialTokenId(string content) => _added.TryGetValue(content, out int id) ? id
        : throw new KeyNotFoundException($"the tokenizer has no special token '{content}'");

    internal static BpeModel Create(List<string> tokens, List<(int, int)> merges, List<(int Id, SpecialToken Token)> added)
    {
        var vocab = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++)
            vocab.Add(tokens[i], i);
        return new BpeModel(vocab, merges, added.Select(a => new AddedToken(a.Id, a.Token.Content, a.Token.Special)).ToList(), "trained model");
    }

    /// <summary>Encodes plain text (no special-token parsing) to token ids.</summary>
    public int[] Encode(string text)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        Encode(text, ids);
        return ids.ToArray();
    }

    /// <summary>Appends the token ids of plain text (no special-token parsing) to <paramref name="output"/>. Thread-safe.</summary>
    public void Encode(string text, List<int> output)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(output);
        var pieces = new List<Range>();
        PreTokenizer.Split(text, pieces);
        foreach (Range r in pieces)
        {
            string piece = text[r];
            if (!_cache.TryGetValue(piece, out int[]? ids))
            {
                ids = EncodePiece(piece);
                if (piece.Length <= 64)
                    _cache.TryAdd(piece, ids); // long runs (rules, white space) are rare: do not let them grow the cache
            }
            output.AddRange(ids);
        }
    }

    private int[] EncodePiece(string piece)
    {
        byte[] bytes = ByteLevel.Utf8.GetBytes(piece);
        var symbols = new List<int>(bytes.Length);
        foreach (byte b in bytes)
            symbols.Add(_byteToId[b]);
        while (symbols.Count > 1)
        {
            int bestRank = int.MaxValue, bestAt = -1, bestResult = 0;
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                if (_mergeRanks.TryGetValue(Key(symbols[i], symbols[i + 1]), out (int Rank, int Result) m) && m.Rank < bestRank)
                {
                    bestRank = m.Rank;
                    bestAt = i;
                    bestResult = m.Result;
                }
            }
            if (bestAt < 0)
                break;
            symbols[bestAt] = bestResult;
            symbols.RemoveAt(bestAt + 1);
        }
        return symbols.ToArray();
    }

    /// <summary>Decodes token ids to text; special tokens are written as their text, invalid UTF-8 as U+FFFD.</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder();
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            string token = IdToToken(id);
            if (_isAdded[id])
            {
                sb.Append(ByteLevel.Utf8.GetString(bytes.ToArray()));
                bytes.Clear();
                sb.Append(token);
            }
            else if (!ByteLevel.TryDecode(token, bytes))
            {
                throw new InvalidDataException($"token {id} '{token}' is not a byte-level string");
            }
        }
        sb.Append(ByteLevel.Utf8.GetString(bytes.ToArray()));
        return sb.ToString();
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
        {
            if (_vocab.TryGetValue(_tokens[id], out int vid) && vid == id)
                w.WriteNumber(_tokens[id], id);
        }
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
        SpecialTokenId(content); // the config may only name tokens the vocabulary has
        w.WriteStartObject(name);
        w.WriteString("__type", "AddedToken");
        w.WriteString("content", content);
        w.WriteBoolean("lstrip", false);
        w.WriteBoolean("normalized", true);
        w.WriteBoolean("rstrip", false);
        w.WriteBoolean("single_word", false);
        w.WriteEndObject();
    }

    /// <summary>DeepSeek-V3's normalizer section (an empty Sequence).</summary>
    public static JsonObject NormalizerJson() => new() { ["type"] = "Sequence", ["normalizers"] = new JsonArray() };

    /// <summary>DeepSeek-V3's pre_tokenizer section: the three Splits of <see cref="PreTokenizer"/>, then ByteLevel.</summary>
    public static JsonObject PreTokenizerJson()
    {
        var steps = new JsonArray();
        foreach (string pattern in PreTokenizer.SplitPatterns)
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

    /// <summary>
    /// Loads a tokenizer.json with a BPE model and DeepSeek-V3's pre-tokenizer (as written by
    /// <see cref="WriteHuggingFace"/>, or DeepSeek-V3's own). Other pre-tokenizers are refused with
    /// <see cref="NotSupportedException"/>, malformed files with <see cref="InvalidDataException"/>.
    /// </summary>
    public static BpeModel Load(string tokenizerJsonPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenizerJsonPath);
        JsonNode root;
        try
        {
            using FileStream f = File.OpenRead(tokenizerJsonPath);
            root = JsonNode.Parse(f) ?? throw new InvalidDataException($"{tokenizerJsonPath}: empty JSON");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{tokenizerJsonPath}: not valid JSON: {e.Message}", e);
        }
        JsonNode model = root["model"] ?? throw new InvalidDataException($"{tokenizerJsonPath}: no 'model' section");
        if ((string?)model["type"] != "BPE")
            throw new NotSupportedException($"{tokenizerJsonPath}: model type '{(string?)model["type"]}' is not BPE");
        if (!JsonNode.DeepEquals(root["pre_tokenizer"], PreTokenizerJson()))
            throw new NotSupportedException($"{tokenizerJsonPath}: pre_tokenizer differs from DeepSeek-V3's");

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach ((string token, JsonNode? id) in model["vocab"]?.AsObject() ?? throw new InvalidDataException($"{tokenizerJsonPath}: no model.vocab"))
            vocab[token] = (int?)id ?? throw new InvalidDataException($"{tokenizerJsonPath}: vocab entry '{token}' has no id");

        var merges = new List<(int, int)>();
        foreach (JsonNode? m in model["merges"]?.AsArray() ?? throw new InvalidDataException($"{tokenizerJsonPath}: no model.merges"))
        {
            (string left, string right) = m switch
            {
                JsonValue v when v.TryGetValue(out string? s) && s.IndexOf(' ') is int sp and > 0 => (s[..sp], s[(sp + 1)..]),
                JsonArray { Count: 2 } a => ((string?)a[0] ?? "", (string?)a[1] ?? ""),
                _ => throw new InvalidDataException($"{tokenizerJsonPath}: merge {merges.Count} is neither \"a b\" nor [a, b]"),
            };
            if (!vocab.TryGetValue(left, out int l) || !vocab.TryGetValue(right, out int r))
                throw new InvalidDataException($"{tokenizerJsonPath}: merge {merges.Count} '{left} {right}' uses a token outside the vocabulary");
            merges.Add((l, r));
        }

        var added = new List<AddedToken>();
        foreach (JsonNode? a in root["added_tokens"]?.AsArray() ?? [])
        {
            int id = (int?)a?["id"] ?? throw new InvalidDataException($"{tokenizerJsonPath}: added token without id");
            string content = (string?)a!["content"] ?? throw new InvalidDataException($"{tokenizerJsonPath}: added token {id} without content");
            added.Add(new AddedToken(id, content, (bool?)a["special"] ?? false));
        }
        return new BpeModel(vocab, merges, added, tokenizerJsonPath);
    }

    private static string ReadChatTemplate()
    {
        using Stream s = typeof(BpeModel).Assembly.GetManifestResourceStream("SharpSeek.Data.deepseek-v3-chat-template.jinja")
            ?? throw new InvalidOperationException("embedded chat template missing from SharpSeek.Data");
        using var reader = new StreamReader(s, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
