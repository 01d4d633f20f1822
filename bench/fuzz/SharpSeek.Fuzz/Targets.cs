// The untrusted inputs SharpSeek reads, each as a fuzz target that takes the bytes of one file: a GGUF model
// (reader, deepseek2 config, tokenizer metadata, weights, a forward pass), model.safetensors beside a valid
// config.json (header, tensors against the config, a forward pass), config.json beside valid weights, tokenizer.json
// (load, encode with special tokens, decode), tokenizer_config.json with its chat template (load, detect the template,
// render a conversation with reasoning and tools) and a chat request / messages file (parse, render with every
// template). A target may refuse its input only with InvalidDataException or NotSupportedException whose message names
// the file; any other exception, a refusal that names no file, a hang (AFL's -t) or an allocation past the GC heap
// limit the fuzz script sets (DOTNET_GCHeapHardLimit: an allocation sized by untrusted input) is a crash for AFL.
using System.Text;
using System.Text.Json.Nodes;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tokenizer;

namespace SharpSeek.Fuzz;

/// <summary>An input a target refused without naming its file.</summary>
public sealed class UnnamedRefusalException(string message, Exception inner) : Exception(message, inner);

/// <summary>The fuzz targets and their seed inputs.</summary>
public static class Targets
{
    /// <summary>Target names, each with the file name its input is written to.</summary>
    public static readonly IReadOnlyDictionary<string, string> Files = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["gguf"] = "model.gguf",
        ["safetensors"] = "model.safetensors",
        ["config"] = "config.json",
        ["tokenizer"] = "tokenizer.json",
        ["chat-template"] = "tokenizer_config.json",
        ["messages"] = "messages.json",
    };

    private static readonly Lazy<Companions> Made = new(MakeCompanions);

    // the valid files a target's input sits beside, and the seeds; made once per process from a tiny synthetic model
    private sealed record Companions(string Dir, byte[] Config, byte[] Safetensors, byte[] Tokenizer, byte[][] Gguf);

    /// <summary>
    /// Runs <paramref name="target"/> on <paramref name="input"/> (written to its file in a scratch folder of this
    /// process). Returns true when the input was accepted, false when refused as it should be; throws otherwise.
    /// </summary>
    public static bool Run(string target, byte[] input)
    {
        if (!Files.TryGetValue(target, out string? file))
            throw new ArgumentException($"unknown target '{target}' (expected {string.Join(", ", Files.Keys)})");
        Companions c = Made.Value;
        string dir = Path.Combine(c.Dir, target);
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, file);
        File.WriteAllBytes(path, input);
        try
        {
            switch (target)
            {
                case "gguf":
                    Gguf(path);
                    break;
                case "safetensors":
                    EnsureFile(Path.Combine(dir, "config.json"), c.Config);
                    Weights(dir);
                    break;
                case "config":
                    EnsureFile(Path.Combine(dir, "model.safetensors"), c.Safetensors);
                    Weights(dir);
                    break;
                case "tokenizer":
                    Tokenizer(path);
                    break;
                case "chat-template":
                    ChatTemplateTarget(path);
                    break;
                default:
                    Messages(path);
                    break;
            }
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            if (!e.Message.Contains(file, StringComparison.Ordinal) && !e.Message.Contains(dir, StringComparison.Ordinal))
                throw new UnnamedRefusalException($"{target}: a refusal that names no file: {e.GetType().Name}: {e.Message}", e);
            return false;
        }
    }

    /// <summary>Writes the seed inputs of every target under <paramref name="directory"/>/TARGET/; the chat-template
    /// seeds are <paramref name="templateSources"/> (released tokenizer_config.json files, or Jinja files).</summary>
    public static void WriteSeeds(string directory, IEnumerable<string> templateSources)
    {
        Companions c = Made.Value;
        void Seed(string target, string name, byte[] bytes)
        {
            string d = Path.Combine(directory, target);
            Directory.CreateDirectory(d);
            File.WriteAllBytes(Path.Combine(d, name), bytes);
        }
        Seed("gguf", "q8_0.gguf", c.Gguf[0]);
        Seed("gguf", "bf16.gguf", c.Gguf[1]);
        Seed("safetensors", "model.safetensors", c.Safetensors);
        Seed("config", "config.json", c.Config);
        Seed("tokenizer", "tokenizer.json", c.Tokenizer);
        Seed("chat-template", "no-template.json", Encoding.UTF8.GetBytes("""{"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>", "add_bos_token": true}"""));
        foreach (string source in templateSources)
        {
            // a released tokenizer_config.json as it is, or a Jinja file wrapped in one
            byte[] bytes = File.ReadAllBytes(source);
            if (!source.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            {
                var config = new JsonObject
                {
                    ["bos_token"] = "<｜begin▁of▁sentence｜>", ["eos_token"] = "<｜end▁of▁sentence｜>",
                    ["add_bos_token"] = true, ["chat_template"] = Encoding.UTF8.GetString(bytes),
                };
                bytes = Encoding.UTF8.GetBytes(config.ToJsonString());
            }
            Seed("chat-template", Path.GetFileNameWithoutExtension(source) + ".json", bytes);
        }
        Seed("messages", "request.json", Encoding.UTF8.GetBytes("""
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"},
             {"role": "assistant", "content": null, "reasoning_content": "Use the tool.", "tool_calls": [{"id": "c1", "type": "function",
              "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
             {"role": "tool", "tool_call_id": "c1", "content": "18 C"}, {"role": "assistant", "content": "18 C and sunny."},
             {"role": "user", "content": "And tomorrow?"}],
             "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}
            """));
        Seed("messages", "array.json", Encoding.UTF8.GetBytes("""[{"role": "user", "content": "What is 12 + 7 * (30 - 4)?"}]"""));
    }

    private static void Gguf(string path)
    {
        using GgufModelFile m = GgufModel.Open(path);
        if (m.Tokenizer is { } tok)
            tok.Decode(tok.Encode("Hello, world! 123 <｜begin▁of▁sentence｜>", addSpecialTokens: true));
        using ModelWeights w = m.LoadWeights();
        Forward(w);
    }

    private static void Weights(string dir)
    {
        using ModelWeights w = WeightLoader.Load(dir);
        Forward(w);
    }

    private static void Tokenizer(string path)
    {
        BpeTokenizer tok = BpeTokenizer.Load(path);
        int[] ids = tok.Encode("Hello, world! 123 \u00e9\u4e2d <｜begin▁of▁sentence｜> the", addSpecialTokens: true);
        tok.Decode(ids);
        tok.Decode(Enumerable.Range(0, Math.Min(tok.VocabSize, 300)).ToArray());
    }

    // built on each call: instrumented code must not run before the fuzzer has set up AFL's shared memory (a static
    // initializer would)
    private static ChatMessage[] Conversation() =>
    [
        ChatMessage.System("Be brief."),
        ChatMessage.User("Weather in Paris?"),
        ChatMessage.Assistant(null, [new ToolCall("c1", "get_weather", "{\"city\": \"Paris\"}")]) with { ReasoningContent = "Use the tool." },
        ChatMessage.Tool("18 C", "c1"),
        ChatMessage.Assistant("18 C and sunny."),
        ChatMessage.User("And tomorrow?"),
    ];

    private static void ChatTemplateTarget(string path)
    {
        TokenizerConfig config = TokenizerConfig.Load(path);
        ChatTemplate template = ChatTemplate.FromConfig(config);
        ChatMessage[] conversation = Conversation();
        template.Render(conversation, addGenerationPrompt: true);
        template.Render(conversation.Take(2).ToArray(), addGenerationPrompt: false);
    }

    private static void Messages(string path)
    {
        ChatConversation conversation = ChatMessage.LoadConversationJson(path);
        foreach (ChatTemplateKind kind in Enum.GetValues<ChatTemplateKind>())
        {
            try
            {
                ChatTemplate.Create(kind).Render(conversation.Messages, new ChatRenderOptions { Tools = conversation.Tools });
            }
            catch (ArgumentException e)
            {
                // a message this template cannot render (no content, tool arguments that are not JSON) is the file's
                // mistake: the CLI and the server report it as such, naming the message
                throw new InvalidDataException($"{path}: {e.Message}", e);
            }
        }
    }

    private static void Forward(ModelWeights w)
    {
        int v = w.Config.VocabSize;
        new Transformer(w).Logits([0, v - 1, v / 2]);
    }

    private static void EnsureFile(string path, byte[] bytes)
    {
        if (!File.Exists(path) || new FileInfo(path).Length != bytes.Length)
            File.WriteAllBytes(path, bytes);
    }

    // A 2-layer DeepSeek-V3 shape small enough for AFL (hidden 32, 4 routed experts of 16, vocabulary 300: ~40 KB of
    // weights) with a byte-level tokenizer (the V3 pre-tokenizer, BOS/EOS, 256 byte tokens, a few merges).
    private static Companions MakeCompanions()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"sharpseek-fuzz-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string model = Path.Combine(dir, "seed-model");
        Directory.CreateDirectory(model);
        ModelConfig c = ModelConfig.Parse("""
            {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "vocab_size": 300, "hidden_size": 32,
             "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2, "first_k_dense_replace": 1,
             "num_attention_heads": 2, "num_key_value_heads": 2, "n_routed_experts": 4, "n_shared_experts": 1,
             "num_experts_per_tok": 2, "n_group": 1, "topk_group": 1, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
             "topk_method": "noaux_tc", "norm_topk_prob": true, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
             "qk_rope_head_dim": 8, "v_head_dim": 8, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000,
             "bos_token_id": 0, "eos_token_id": 1, "num_nextn_predict_layers": 0, "tie_word_embeddings": false}
            """, "seed config.json");
        SyntheticModel.Write(c, model, seed: 5);
        string tokenizerPath = Path.Combine(model, "tokenizer.json");
        File.WriteAllText(tokenizerPath, ByteLevelTokenizerJson());
        var ggufs = new List<byte[]>();
        using (ModelWeights w = WeightLoader.Load(model))
        {
            foreach (GgufFileType t in new[] { GgufFileType.Q8_0, GgufFileType.BF16 })
            {
                using var ms = new MemoryStream();
                GgufExport.Build(w, t, tokenizerPath).WriteTo(ms);
                ggufs.Add(ms.ToArray());
            }
        }
        return new Companions(dir, File.ReadAllBytes(Path.Combine(model, "config.json")), File.ReadAllBytes(Path.Combine(model, "model.safetensors")),
            File.ReadAllBytes(tokenizerPath), [.. ggufs]);
    }

    private static string ByteLevelTokenizerJson()
    {
        var vocab = new JsonObject { ["<｜begin▁of▁sentence｜>"] = 0, ["<｜end▁of▁sentence｜>"] = 1 };
        int id = 2;
        for (int b = 0; b < 256; b++)
            vocab[ByteLevel.ToChar((byte)b).ToString()] = id++;
        string[][] merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["i", "n"]];
        foreach (string[] m in merges)
            vocab[m[0] + m[1]] = id++;
        var splits = new JsonArray();
        foreach (string pattern in PreTokenizer.DeepSeekV3SplitPatterns)
            splits.Add(new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated", ["invert"] = false });
        splits.Add(new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false });
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(Added(0, "<｜begin▁of▁sentence｜>"), Added(1, "<｜end▁of▁sentence｜>")),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = splits },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m[0], m[1])).ToArray()),
            },
        };
        return json.ToJsonString();

        static JsonObject Added(int id, string content) => new()
        {
            ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false,
            ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
        };
    }
}
