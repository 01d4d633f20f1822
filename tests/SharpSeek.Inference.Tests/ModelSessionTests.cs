// ModelSession: one load of weights, tokenizer and chat template from a checkpoint directory or a .gguf file, the
// vocabulary check, and the generators and chat clients it creates (same output as a hand-built generator).
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tests;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference.Tests;

public sealed class ModelSessionTests
{
    private static readonly GenerationOptions Greedy8 = new() { MaxTokens = 8, Sampling = new SamplingOptions { Temperature = 0 } };

    [Fact]
    public void DirectoryWithTokenizerLoadsTemplateAndGeneratesAsAHandBuiltGenerator()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using ModelSession s = ModelSession.Open(m.Directory, new ModelSessionOptions { Tokenizer = TokenizerLoad.Required, Threads = 2 });
        Assert.Equal(Path.GetFileName(m.Directory), s.ModelId);
        Assert.Equal(1024, s.Tokenizer!.VocabSize);
        Assert.Equal(ChatTemplateKind.DeepSeekV3, s.Template!.Kind);
        Assert.Equal(2, s.Backend.Workers);

        int[] prompt = s.Tokenizer.Encode("Hello");
        GenerationResult got = s.CreateGenerator().Generate(prompt, Greedy8);
        GenerationResult want = new Generator(new Transformer(m.Weights), m.Tokenizer).Generate(prompt, Greedy8);
        Assert.Equal(want.Tokens, got.Tokens);
        Assert.NotSame(s.CreateGenerator().Model, s.CreateGenerator().Model); // own scratch per generator, shared weights

        using SharpSeekChatClient client = s.CreateChatClient(Greedy8);
        Assert.Same(s.Template, client.Template);
        Assert.Equal(s.ModelId, client.Metadata.DefaultModelId);
    }

    [Fact]
    public void TemplateOverrideAndRenderDefaultsReachTheChatClient()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using ModelSession s = ModelSession.Open(m.Directory, new ModelSessionOptions { Tokenizer = TokenizerLoad.Required, Template = ChatTemplateKind.DeepSeekV31 });
        Assert.Equal(ChatTemplateKind.DeepSeekV31, s.Template!.Kind);
        using SharpSeekChatClient thinking = s.CreateChatClient(Greedy8, new ChatRenderOptions { Thinking = true });
        using SharpSeekChatClient plain = s.CreateChatClient(Greedy8);
        Microsoft.Extensions.AI.ChatMessage[] chat = [new(Microsoft.Extensions.AI.ChatRole.User, "Hi")];
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>", thinking.RenderPrompt(chat));
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜></think>", plain.RenderPrompt(chat));
    }

    [Fact]
    public async Task TheBatchedChatClientAnswersConcurrentConversationsAsTheGeneratorClientDoesAlone()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using ModelSession s = ModelSession.Open(m.Directory, new ModelSessionOptions { Tokenizer = TokenizerLoad.Required });
        var options = new Microsoft.Extensions.AI.ChatOptions { Temperature = 0, MaxOutputTokens = 12 };
        Microsoft.Extensions.AI.ChatMessage[][] chats = [.. Enumerable.Range(0, 6).Select(i => new Microsoft.Extensions.AI.ChatMessage[]
            { new(Microsoft.Extensions.AI.ChatRole.User, $"Question {i}: " + string.Concat(Enumerable.Repeat("why ", i * 3))) })];
        string[] alone;
        using (SharpSeekChatClient single = s.CreateChatClient())
        {
            alone = new string[chats.Length];
            for (int i = 0; i < chats.Length; i++)
                alone[i] = (await single.GetResponseAsync(chats[i], options)).Text;
        }

        using SharpSeekChatClient batched = s.CreateBatchedChatClient(new BatchSchedulerOptions { MaxParallel = 4 });
        Assert.Null(batched.Generator);
        BatchScheduler scheduler = Assert.IsType<BatchScheduler>(batched.Scheduler);
        Assert.Same(scheduler, batched.GetService(typeof(BatchScheduler)));
        Assert.Equal(s.Config.MaxPositionEmbeddings, batched.ContextLength);
        Microsoft.Extensions.AI.ChatResponse[] together = await Task.WhenAll(chats.Select(c => batched.GetResponseAsync(c, options)));
        Assert.Equal(alone, together.Select(r => r.Text));
        Assert.All(together, r => Assert.Equal(12, r.Usage!.OutputTokenCount));
        Assert.True(scheduler.Stats.Steps < chats.Length * 12, $"{scheduler.Stats.Steps} steps: the requests did not share steps");

        // the next turn of a conversation takes its prefix from the scheduler's prefix cache
        Microsoft.Extensions.AI.ChatMessage[] next = [.. chats[5], .. together[5].Messages, new(Microsoft.Extensions.AI.ChatRole.User, "And then?")];
        Microsoft.Extensions.AI.ChatResponse turn2 = await batched.GetResponseAsync(next, options);
        Assert.True(turn2.Usage!.CachedInputTokenCount >= together[5].Usage!.InputTokenCount, $"cached {turn2.Usage.CachedInputTokenCount}");
        Assert.Equal(0, scheduler.Stats.CachesUnaccounted);
    }

    [Fact]
    public void TokenizerLoadDecidesWhatIsRead()
    {
        string dir = Fixtures.Hf("v3-tiny"); // no tokenizer.json
        using (ModelSession s = ModelSession.Open(dir))
        {
            Assert.Null(s.Tokenizer);
            Assert.Null(s.Template);
            Assert.Same(SharpSeek.Tensors.ComputeBackend.Cpu, s.Backend);
            Assert.Throws<InvalidOperationException>(() => s.CreateChatClient());
        }
        Assert.Throws<FileNotFoundException>(() => ModelSession.Open(dir, new ModelSessionOptions { Tokenizer = TokenizerLoad.Required }));

        using TinyChatModel m = TinyChatModel.Create();
        using ModelSession none = ModelSession.Open(m.Directory, new ModelSessionOptions { Tokenizer = TokenizerLoad.None, CacheType = CacheType.BF16 });
        Assert.Null(none.Tokenizer);
        Assert.Equal(CacheType.BF16, none.CreateGenerator().CacheType);
    }

    [Fact]
    public void TokenizerLargerThanTheModelIsABadFile()
    {
        // v3-tiny's weights (vocabulary 1024) with the shipped model's tokenizer (4096 tokens)
        using TinyChatModel m = TinyChatModel.Create();
        string mini = Fixtures.ShippedModel("sharpseek-mini");
        foreach (string f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(mini, f), Path.Combine(m.Directory, f), overwrite: true);
        var e = Assert.Throws<InvalidDataException>(() => ModelSession.Open(m.Directory));
        Assert.Contains("4096 tokens but the model only 1024", e.Message, StringComparison.Ordinal);
        Assert.Null(Record.Exception(() => ModelSession.Open(m.Directory, new ModelSessionOptions { Tokenizer = TokenizerLoad.None }).Dispose()));
    }

    [Fact]
    public void GgufFileLoadsInOnePlace()
    {
        string dir = Path.Combine(Path.GetTempPath(), "sharpseek-session-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string file = Path.Combine(dir, "tiny.gguf");
            using (ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny")))
                GgufExport.Write(w, file, GgufFileType.F32, tokenizerJson: null, name: null, log: null);
            using (ModelSession s = ModelSession.Open(file))
            {
                Assert.Null(s.Tokenizer);
                Assert.Equal("tiny.gguf", s.ModelId);
                Assert.Equal(8, s.CreateGenerator().Generate([1, 2, 3], Greedy8 with { IgnoreEos = true }).Tokens.Count);
            }
            var e = Assert.Throws<InvalidDataException>(() => ModelSession.Open(file, new ModelSessionOptions { Tokenizer = TokenizerLoad.Required }));
            Assert.Contains(file, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // generation_config.json's sampling recommendation, as transformers and vLLM read it: do_sample false is greedy
    [Fact]
    public void SamplingDefaultsComeFromGenerationConfig()
    {
        string dir = Path.Combine(Path.GetTempPath(), "sharpseek-genconfig-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            (float?, float?) Read(string json)
            {
                File.WriteAllText(Path.Combine(dir, "generation_config.json"), json);
                return ModelSession.ReadSamplingDefaults(dir);
            }
            Assert.Equal(((float?)null, (float?)null), ModelSession.ReadSamplingDefaults(dir)); // no file
            Assert.Equal(((float?)0.7f, (float?)0.9f), Read("""{"do_sample": true, "temperature": 0.7, "top_p": 0.9}"""));
            Assert.Equal(((float?)0f, (float?)null), Read("""{"do_sample": false, "temperature": 0.6}"""));
            Assert.Equal(((float?)null, (float?)null), Read("""{"max_length": 512}"""));
            var e = Assert.Throws<InvalidDataException>(() => Read("""{"temperature": "hot"}"""));
            Assert.Contains("generation_config.json: field 'temperature'", e.Message, StringComparison.Ordinal);
            e = Assert.Throws<InvalidDataException>(() => Read("""{"do_sample": "no"}"""));
            Assert.Contains("'do_sample'", e.Message, StringComparison.Ordinal);
            Assert.Equal(((float?)null, (float?)null), ModelSession.ReadSamplingDefaults(Path.Combine(dir, "model.gguf")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
