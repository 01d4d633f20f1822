// Servers for the tests: the tiny chat model (random weights, real tokenizer and template) or a "chain" model whose
// weights make greedy decoding emit a chosen text, served on 127.0.0.1 at a free port.
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using SharpSeek.Formats;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Inference;
using SharpSeek.Inference.Tests;
using SharpSeek.Tokenizer;

namespace SharpSeek.Server.Tests;

internal sealed class TestServer : IAsyncDisposable
{
    private readonly TinyChatModel _model;

    private TestServer(TinyChatModel model, ModelSession session, SharpSeekServer server)
    {
        _model = model;
        Session = session;
        Server = server;
        Http = new HttpClient { BaseAddress = new Uri(server.Url + "/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public ModelSession Session { get; }

    public SharpSeekServer Server { get; }

    public HttpClient Http { get; }

    public string Url => Server.Url;

    public BpeTokenizer Tokenizer => Session.Tokenizer!;

    /// <summary>The tiny model; <paramref name="chains"/> (prompt end, text) rewrites its weights so that greedy decoding
    /// after each prompt end emits the text and EOS.</summary>
    public static Task<TestServer> Start(ServerOptions? options = null, bool r1 = false, params (string PromptEnd, string[] Segments)[] chains) =>
        Start(options, r1, null, [], chains);

    /// <summary>The tiny model served with <paramref name="template"/>'s chat format (as <c>serve --template</c>);
    /// <paramref name="tokens"/> are added to the vocabulary so that a prompt end can be one token (a chain key).</summary>
    public static Task<TestServer> Start(ChatTemplateKind template, ServerOptions? options, string[] tokens, params (string PromptEnd, string[] Segments)[] chains) =>
        Start(options, false, template, tokens, chains);

    private static async Task<TestServer> Start(ServerOptions? options, bool r1, ChatTemplateKind? template, string[] tokens, (string PromptEnd, string[] Segments)[] chains)
    {
        TinyChatModel m = TinyChatModel.Create(r1);
        if (chains.Length > 0)
            ChainModel.Rewrite(m.Directory, chains, tokens);
        ModelSession session = ModelSession.Open(m.Directory, new ModelSessionOptions { Tokenizer = TokenizerLoad.Required, Template = template });
        SharpSeekServer server = SharpSeekServer.Create(session, (options ?? new ServerOptions()) with { Port = 0 });
        await server.StartAsync();
        return new TestServer(m, session, server);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Session.Dispose();
        _model.Dispose();
    }
}

/// <summary>
/// Rewrites a v3-tiny checkpoint so that greedy decoding follows chosen token chains: each segment of a chain's text
/// becomes one token (a new added token where the tokenizer has none; the vocabulary, embeddings and heads grow), the
/// attention and FFN outputs (o_proj, every down_proj) are zeroed so the final hidden state is the current token's
/// embedding, each chain key gets its own unit vector as embedding, and lm_head gives its successor a logit of 100
/// along it (so the context can grow to 2048 positions: attention no longer reaches the output). A chain ends with
/// EOS; keys must be distinct. Extra <c>tokens</c> are added too (so that a prompt end
/// such as "\n\n&lt;/think&gt;" can be a key of its own).
/// </summary>
internal static class ChainModel
{
    public static void Rewrite(string dir, (string PromptEnd, string[] Segments)[] chains, string[]? tokens = null)
    {
        BpeTokenizer tokenizer = BpeTokenizer.LoadFromDirectory(dir);
        int V = tokenizer.VocabSize;
        string tokPath = Path.Combine(dir, "tokenizer.json"), configPath = Path.Combine(dir, "config.json");
        JsonNode tok = JsonNode.Parse(File.ReadAllText(tokPath))!;
        JsonArray added = tok["added_tokens"]!.AsArray();
        int newV = V;
        foreach (string seg in chains.SelectMany(c => c.Segments).Concat(tokens ?? []).Distinct())
        {
            if (tokenizer.Encode(seg).Length != 1)
                added.Add(new JsonObject { ["id"] = newV++, ["content"] = seg, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = false });
        }
        File.WriteAllText(tokPath, tok.ToJsonString());
        JsonNode config = JsonNode.Parse(File.ReadAllText(configPath))!;
        config["vocab_size"] = newV;
        config["max_position_embeddings"] = 2048; // room for V3.2/V4's tool prompts; positions do not matter here
        File.WriteAllText(configPath, config.ToJsonString());
        tokenizer = BpeTokenizer.LoadFromDirectory(dir);

        var next = new Dictionary<int, int>();
        foreach ((string end, string[] segments) in chains)
        {
            int[] ids = [tokenizer.Encode(end)[^1], .. segments.Select(seg => tokenizer.Encode(seg).Single()), tokenizer.EosId!.Value];
            for (int i = 0; i + 1 < ids.Length; i++)
            {
                if (!next.TryAdd(ids[i], ids[i + 1]))
                    throw new ArgumentException($"token {ids[i]} ('{tokenizer.Decode([ids[i]])}') repeats in the chains; pick other texts");
            }
        }
        string path = Path.Combine(dir, "model.safetensors");
        var writer = new SafetensorsWriter();
        using (SafetensorsFile f = SafetensorsFile.Open(path))
        {
            foreach (TensorInfo t in f.Tensors.Values.OrderBy(t => t.DataStart))
            {
                float[] v = MemoryMarshal.Cast<byte, float>(f.Bytes(t)).ToArray();
                long[] shape = t.Shape;
                int H = (int)shape[^1];
                if (shape.Length == 2 && shape[0] == V) // embeddings and heads: rows for the new tokens
                {
                    Array.Resize(ref v, newV * H);
                    shape = [newV, H];
                }
                if (t.Name.EndsWith("o_proj.weight", StringComparison.Ordinal) || t.Name.EndsWith("down_proj.weight", StringComparison.Ordinal))
                    Array.Clear(v);
                else if (t.Name == "model.norm.weight")
                    Array.Fill(v, 1f);
                else if (t.Name == "model.embed_tokens.weight")
                {
                    int k = 0;
                    foreach (int key in next.Keys)
                    {
                        Span<float> row = v.AsSpan(key * H, H);
                        row.Clear();
                        row[k++] = 1f;
                    }
                }
                else if (t.Name == "lm_head.weight")
                {
                    foreach (int succ in next.Values)
                        v.AsSpan(succ * H, H).Clear();
                    int k = 0;
                    foreach (int succ in next.Values)
                        v[succ * H + k++] += 100f;
                }
                writer.AddF32(t.Name, shape, v);
            }
        }
        writer.Save(path);
    }
}
