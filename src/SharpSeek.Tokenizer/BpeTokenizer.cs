// The DeepSeek tokenizer: added tokens matched first, then the DeepSeek pre-tokenizer, then byte-level BPE;
// decoding maps ids back to bytes and reads them as UTF-8. Same ids as Hugging Face tokenizers on the
// DeepSeek tokenizer.json files (tests/SharpSeek.Tokenizer.Tests checks this against the Rust library).
using System.Text;

namespace SharpSeek.Tokenizer;

/// <summary>Byte-level BPE tokenizer for the DeepSeek model family. Thread-safe.</summary>
public sealed class BpeTokenizer
{
    [ThreadStatic]
    private static PieceList? t_pieces;

    private readonly BpeModel _model;
    private readonly PreTokenizer _pre;
    private readonly AddedVocabulary _added;
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int> _addedByContent = new(StringComparer.Ordinal);
    private readonly string?[] _idToToken;
    private readonly byte[]?[] _tokenBytes;
    private readonly bool[] _special;

    private BpeTokenizer(
        Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, bool ignoreMerges,
        IReadOnlyList<AddedToken> addedTokens, PreTokenizerKind preTokenizer, TokenizerConfig? config, string source)
    {
        _vocab = vocab;
        _model = new BpeModel(vocab, merges, ignoreMerges, source);
        _pre = new PreTokenizer(preTokenizer);
        _added = new AddedVocabulary(addedTokens);
        AddedTokens = addedTokens.ToArray();
        SpecialTokens = addedTokens.Where(t => t.Special).ToArray();
        Config = config;

        int size = 0;
        foreach (int id in vocab.Values)
            size = Math.Max(size, id + 1);
        foreach (AddedToken t in addedTokens)
            size = Math.Max(size, t.Id + 1);
        VocabSize = size;

        _idToToken = new string?[size];
        foreach ((string token, int id) in vocab)
            _idToToken[id] ??= token;
        foreach (AddedToken t in addedTokens)
        {
            _idToToken[t.Id] = t.Content; // an added token's content takes precedence for its id, as in HF
            _addedByContent.TryAdd(t.Content, t.Id);
        }
        _tokenBytes = new byte[]?[size];
        _special = new bool[size];
        for (int id = 0; id < size; id++)
        {
            if (_idToToken[id] is string token)
                _tokenBytes[id] = ByteLevel.TokenBytes(token);
        }
        foreach (AddedToken t in SpecialTokens)
            _special[t.Id] = true;

        if (config is not null)
        {
            BosId = config.BosToken is null ? null : TokenToId(config.BosToken);
            EosId = config.EosToken is null ? null : TokenToId(config.EosToken);
            if (config.BosToken is not null && BosId is null)
                throw new InvalidDataException($"{source}: bos_token '{config.BosToken}' is not in the vocabulary");
            if (config.EosToken is not null && EosId is null)
                throw new InvalidDataException($"{source}: eos_token '{config.EosToken}' is not in the vocabulary");
        }
    }

    /// <summary>Loads a Hugging Face <c>tokenizer.json</c>; a directory is read as by <see cref="LoadFromDirectory"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not valid JSON or a field is malformed (the message names it).</exception>
    /// <exception cref="NotSupportedException">The model type, normalizer, pre-tokenizer or decoder is not DeepSeek's.</exception>
    public static BpeTokenizer Load(string tokenizerJsonPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenizerJsonPath);
        if (Directory.Exists(tokenizerJsonPath))
            return LoadFromDirectory(tokenizerJsonPath);
        return Load(tokenizerJsonPath, config: null);
    }

    /// <summary>Loads <c>tokenizer.json</c> and, when present, <c>tokenizer_config.json</c> (BOS/EOS, add_bos_token,
    /// chat_template) from a model directory.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">The directory has no tokenizer.json.</exception>
    public static BpeTokenizer LoadFromDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"model directory not found: {directory}");
        string json = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(json))
            throw new FileNotFoundException($"no tokenizer.json in {directory}", json);
        string configPath = Path.Combine(directory, "tokenizer_config.json");
        TokenizerConfig? config = File.Exists(configPath) ? TokenizerConfig.Load(configPath) : null;
        return Load(json, config);
    }

    private static BpeTokenizer Load(string path, TokenizerConfig? config)
    {
        TokenizerJson.Contents c = TokenizerJson.Read(path);
        return new BpeTokenizer(c.Vocab, c.Merges, c.IgnoreMerges, c.AddedTokens, c.PreTokenizer, config, path);
    }

    /// <summary>Builds a tokenizer from a vocabulary, merges and added tokens held in memory (for example read from a
    /// GGUF file, which has no tokenizer.json).</summary>
    /// <param name="vocab">byte-level token text -> id (GPT-2 byte alphabet, "Ġ" for a space)</param>
    /// <param name="merges">merge rules, highest priority first</param>
    /// <param name="addedTokens">tokens matched before pre-tokenization (special and control tokens)</param>
    /// <param name="preTokenizer">which DeepSeek pre-tokenizer the vocabulary was trained with</param>
    /// <param name="config">BOS/EOS and chat template, or null</param>
    /// <param name="ignoreMerges">a piece that is itself in the vocabulary is taken whole</param>
    /// <exception cref="InvalidDataException">A merge uses a token that is not in the vocabulary.</exception>
    public static BpeTokenizer Create(
        IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges,
        IReadOnlyList<AddedToken> addedTokens, PreTokenizerKind preTokenizer, TokenizerConfig? config = null,
        bool ignoreMerges = false)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        ArgumentNullException.ThrowIfNull(merges);
        ArgumentNullException.ThrowIfNull(addedTokens);
        foreach ((string token, int id) in vocab)
        {
            if (id < 0)
                throw new ArgumentException($"vocabulary id {id} of '{token}' is negative", nameof(vocab));
        }
        return new BpeTokenizer(new Dictionary<string, int>(vocab, StringComparer.Ordinal), merges, ignoreMerges,
            addedTokens, preTokenizer, config, "in-memory vocabulary");
    }

    /// <summary>Builds a tokenizer from GGUF tokenizer metadata: <c>tokenizer.ggml.tokens</c> (the id is the index),
    /// <c>tokenizer.ggml.merges</c> ("a b") and <c>tokenizer.ggml.token_type</c> (3 = control, becomes a special
    /// added token; 4 = user defined, a non-special added token).</summary>
    /// <param name="tokens">token texts by id</param>
    /// <param name="merges">merges as "left right"</param>
    /// <param name="tokenTypes">llama.cpp token types by id, or null when absent</param>
    /// <param name="preTokenizer">the pre-tokenizer named by <c>tokenizer.ggml.pre</c> (see <see cref="ParsePreTokenizer"/>)</param>
    /// <param name="config">BOS/EOS and chat template, or null</param>
    /// <exception cref="InvalidDataException">A merge is malformed or the token types do not match the tokens.</exception>
    public static BpeTokenizer CreateFromGguf(
        IReadOnlyList<string> tokens, IReadOnlyList<string> merges, IReadOnlyList<int>? tokenTypes,
        PreTokenizerKind preTokenizer, TokenizerConfig? config = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(merges);
        if (tokenTypes is not null && tokenTypes.Count != tokens.Count)
            throw new InvalidDataException($"GGUF tokenizer: {tokenTypes.Count} token types for {tokens.Count} tokens");
        var vocab = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        var added = new List<AddedToken>();
        for (int id = 0; id < tokens.Count; id++)
        {
            vocab.TryAdd(tokens[id], id); // a repeated token keeps its first id
            int type = tokenTypes?[id] ?? 1;
            if (type is 3 or 4)
                added.Add(new AddedToken(id, tokens[id], Special: type == 3));
        }
        var pairs = new List<(string, string)>(merges.Count);
        for (int i = 0; i < merges.Count; i++)
        {
            string[] parts = merges[i].Split(' ');
            if (parts.Length != 2)
                throw new InvalidDataException($"GGUF tokenizer: merge {i} '{merges[i]}' is not two tokens separated by one space");
            pairs.Add((parts[0], parts[1]));
        }
        return new BpeTokenizer(vocab, pairs, ignoreMerges: false, added, preTokenizer, config, "GGUF tokenizer");
    }

    /// <summary>Maps a pre-tokenizer name (GGUF <c>tokenizer.ggml.pre</c>, or the CLI's) to its kind:
    /// "deepseek-v3" (also llama.cpp's "deepseek-v3"/"deepseek3-llm") or "deepseek-llm".</summary>
    /// <exception cref="NotSupportedException">Any other name.</exception>
    public static PreTokenizerKind ParsePreTokenizer(string name) => name switch
    {
        "deepseek-v3" or "deepseek3-llm" => PreTokenizerKind.DeepSeekV3,
        "deepseek-llm" => PreTokenizerKind.DeepSeekLlm,
        _ => throw new NotSupportedException($"pre-tokenizer '{name}' is not supported (deepseek-v3, deepseek-llm)"),
    };

    /// <summary>Number of ids: one more than the highest id of the vocabulary and the added tokens.</summary>
    public int VocabSize { get; }

    /// <summary>The pre-tokenizer in use.</summary>
    public PreTokenizerKind PreTokenizer => _pre.Kind;

    /// <summary>All added tokens, special or not, in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The added tokens marked special.</summary>
    public IReadOnlyList<AddedToken> SpecialTokens { get; }

    /// <summary>tokenizer_config.json when loaded from a directory (or given to Create), else null.</summary>
    public TokenizerConfig? Config { get; }

    /// <summary>Id of the BOS token named by tokenizer_config.json, or null.</summary>
    public int? BosId { get; }

    /// <summary>Id of the EOS token named by tokenizer_config.json, or null.</summary>
    public int? EosId { get; }

    /// <summary>Encodes text to ids. With <paramref name="addSpecialTokens"/>, BOS is prepended and EOS appended
    /// where tokenizer_config.json asks for them (add_bos_token, add_eos_token); special tokens written in the
    /// text are always recognised.</summary>
    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        EncodeToList(text, ids, addSpecialTokens);
        return ids.ToArray();
    }

    /// <summary>Appends the ids of <paramref name="text"/> to <paramref name="ids"/>; see <see cref="Encode"/>.</summary>
    public void EncodeToList(ReadOnlySpan<char> text, List<int> ids, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (addSpecialTokens && Config is { AddBosToken: true } && BosId is int bos)
            ids.Add(bos);
        if (_added.IsEmpty)
        {
            EncodeOrdinary(text, ids);
        }
        else
        {
            var segments = new List<AddedVocabulary.Segment>();
            _added.Split(text, segments);
            foreach (AddedVocabulary.Segment s in segments)
            {
                if (s.Id >= 0)
                    ids.Add(s.Id);
                else
                    EncodeOrdinary(text[s.Start..s.End], ids);
            }
        }
        if (addSpecialTokens && Config is { AddEosToken: true } && EosId is int eos)
            ids.Add(eos);
    }

    /// <summary>Encodes <paramref name="text"/> as plain text: no added token is matched, so "&lt;think&gt;" or
    /// "&lt;｜User｜&gt;" written in it go through the pre-tokenizer and BPE like any other text, and BOS/EOS are not
    /// added. For training documents, whose text must not turn into control tokens.</summary>
    public int[] EncodePlainText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        EncodeOrdinary(text, ids);
        return ids.ToArray();
    }

    // text without added tokens: pre-tokenize, then BPE each piece
    private void EncodeOrdinary(ReadOnlySpan<char> text, List<int> ids)
    {
        PieceList pieces = t_pieces ??= new PieceList();
        pieces.Clear();
        _pre.Split(text, pieces);
        for (int i = 0; i < pieces.Count; i++)
            _model.Encode(text[pieces.Start(i)..pieces.End(i)], ids);
    }

    /// <summary>Decodes ids to text. Bytes that do not form valid UTF-8 read as U+FFFD, one per maximal
    /// invalid subsequence, as Hugging Face tokenizers does.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is negative or not below <see cref="VocabSize"/>.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>(ids.Length * 4);
        foreach (int id in ids)
        {
            if (skipSpecialTokens && IsSpecial(id))
                continue;
            bytes.AddRange(GetTokenBytes(id));
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>The UTF-8 bytes one id stands for (empty for an unused id).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is negative or not below <see cref="VocabSize"/>.</exception>
    public ReadOnlySpan<byte> GetTokenBytes(int id)
    {
        if ((uint)id >= (uint)_tokenBytes.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id must be in [0, {VocabSize})");
        return _tokenBytes[id];
    }

    /// <summary>Whether the id is a special added token (skipped by decoding with skipSpecialTokens).</summary>
    public bool IsSpecial(int id) => (uint)id < (uint)_special.Length && _special[id];

    /// <summary>The id of a token's text (added tokens first, then the BPE vocabulary in byte-level form), or null.</summary>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (_addedByContent.TryGetValue(token, out int id) || _vocab.TryGetValue(token, out id))
            return id;
        return null;
    }

    /// <summary>The text of a token (byte-level form for BPE tokens), or null for an unknown id.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>A decoder that takes one id at a time and returns the text completed by it.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);
}
