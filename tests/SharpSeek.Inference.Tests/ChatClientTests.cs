// The IChatClient on the tiny model with a tokenizer (garbage text from random weights, but real counts, options,
// streaming and template handling), and the output splitter on crafted DeepSeek output.
using System.Text;
using Microsoft.Extensions.AI;
using SharpSeek.Model;
using SharpSeek.Tokenizer;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace SharpSeek.Inference.Tests;

public class ChatClientTests
{
    private static readonly ChatOptions Greedy20 = new() { Temperature = 0, MaxOutputTokens = 20 };

    private static SharpSeekChatClient Client(TinyChatModel m) =>
        new(new Generator(new Transformer(m.Weights), m.Tokenizer), defaults: new GenerationOptions { MaxTokens = 64, IgnoreEos = true });

    [Fact]
    public async Task ResponseCarriesTextUsageAndFinishReason()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using SharpSeekChatClient client = Client(m);
        AiChatMessage[] chat = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "What is a latent cache?")];
        ChatResponse r = await client.GetResponseAsync(chat, Greedy20);
        string prompt = client.RenderPrompt(chat);
        Assert.Equal("<｜begin▁of▁sentence｜>Be brief.<｜User｜>What is a latent cache?<｜Assistant｜>", prompt);
        Assert.Single(r.Messages);
        Assert.Equal(ChatRole.Assistant, r.Messages[0].Role);
        Assert.Equal(ChatFinishReason.Length, r.FinishReason);
        Assert.NotNull(r.Usage);
        Assert.Equal(m.Tokenizer.Encode(prompt).Length, r.Usage!.InputTokenCount);
        Assert.Equal(20, r.Usage.OutputTokenCount);
        Assert.Equal(r.Usage.InputTokenCount + 20, r.Usage.TotalTokenCount);
        Assert.Equal(0, r.Usage.ReasoningTokenCount);
        // the text is the decoded greedy continuation of the rendered prompt
        var g = new Generator(new Transformer(m.Weights), m.Tokenizer);
        GenerationResult want = g.Generate(m.Tokenizer.Encode(prompt), new GenerationOptions { MaxTokens = 20, Sampling = SamplingOptions.Greedy, IgnoreEos = true });
        Assert.Equal(ToolCallParser.Parse(want.Text).Content, r.Text);
        Assert.False(string.IsNullOrEmpty(r.ResponseId));
        Assert.Equal("deepseek_v3", client.Metadata.DefaultModelId);
    }

    [Fact]
    public async Task StreamingAgreesWithTheWholeResponse()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using SharpSeekChatClient client = Client(m);
        AiChatMessage[] chat = [new(ChatRole.User, "Stream please")];
        var updates = new List<ChatResponseUpdate>();
        await foreach (ChatResponseUpdate u in client.GetStreamingResponseAsync(chat, Greedy20))
            updates.Add(u);
        Assert.True(updates.Count > 1);
        Assert.All(updates.Take(updates.Count - 1), u => Assert.Null(u.FinishReason));
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
        UsageContent usage = Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>());
        Assert.Equal(20, usage.Details.OutputTokenCount);
        Assert.All(updates, u => Assert.Equal(updates[0].ResponseId, u.ResponseId));
        ChatResponse whole = await client.GetResponseAsync(chat, Greedy20);
        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        // the second identical request reuses the cached prompt
        Assert.True(whole.Usage!.CachedInputTokenCount > 0);
    }

    [Fact]
    public async Task OptionsMapToSampling()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using SharpSeekChatClient client = Client(m);
        AiChatMessage[] chat = [new(ChatRole.User, "Options")];
        var sampled = new ChatOptions { Temperature = 1.1f, TopP = 0.9f, TopK = 50, Seed = 9, MaxOutputTokens = 12, PresencePenalty = 0.5f, FrequencyPenalty = 0.2f };
        string a = (await client.GetResponseAsync(chat, sampled)).Text;
        string b = (await client.GetResponseAsync(chat, sampled)).Text;
        ChatOptions otherSeed = sampled.Clone();
        otherSeed.Seed = 10;
        string c = (await client.GetResponseAsync(chat, otherSeed)).Text;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);

        ChatResponse full = await client.GetResponseAsync(chat, Greedy20);
        string stop = full.Text.Substring(4, 3);
        ChatResponse stopped = await client.GetResponseAsync(chat, new ChatOptions { Temperature = 0, MaxOutputTokens = 20, StopSequences = [stop] });
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
        Assert.Equal(full.Text[..full.Text.IndexOf(stop, StringComparison.Ordinal)], stopped.Text);

        ChatResponse shortOne = await client.GetResponseAsync(chat, new ChatOptions { Temperature = 0, MaxOutputTokens = 3 });
        Assert.Equal(3, shortOne.Usage!.OutputTokenCount);
        var extra = new ChatOptions { Temperature = 0.8f, Seed = 1, MaxOutputTokens = 5, AdditionalProperties = new() { ["min_p"] = 0.2, ["repetition_penalty"] = 1.3f } };
        Assert.Equal(5, (await client.GetResponseAsync(chat, extra)).Usage!.OutputTokenCount);
        var bad = new ChatOptions { AdditionalProperties = new() { ["min_p"] = "high" } };
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(chat, bad));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(chat, new ChatOptions { TopP = 0 }));
    }

    [Fact]
    public async Task R1OutputIsReasoningUntilTheThinkBlockCloses()
    {
        using TinyChatModel m = TinyChatModel.Create(r1: true);
        using SharpSeekChatClient client = Client(m);
        Assert.Equal(ChatTemplateKind.DeepSeekR1, client.Template.Kind);
        AiChatMessage[] chat = [new(ChatRole.User, "Think")];
        Assert.EndsWith("<｜Assistant｜><think>\n", client.RenderPrompt(chat), StringComparison.Ordinal);
        ChatResponse r = await client.GetResponseAsync(chat, Greedy20);
        // random weights never close the block (</think> is token 1013): everything is reasoning
        string reasoning = string.Concat(r.Messages[0].Contents.OfType<TextReasoningContent>().Select(c => c.Text));
        Assert.True(reasoning.Length > 0);
        Assert.Equal("", r.Text);
        Assert.Equal(20, r.Usage!.ReasoningTokenCount);
    }

    [Fact]
    public async Task ToolCallsAndResultsRenderThroughTheTemplate()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using SharpSeekChatClient client = Client(m);
        var call = new FunctionCallContent("call_1", "get_weather", new Dictionary<string, object?> { ["city"] = "Paris" });
        AiChatMessage[] chat =
        [
            new(ChatRole.User, "Weather in Paris?"),
            new(ChatRole.Assistant, [call]),
            new(ChatRole.Tool, [new FunctionResultContent("call_1", "{\"temp\":20}")]),
        ];
        var tool = AIFunctionFactory.CreateDeclaration("get_weather", "Current weather", System.Text.Json.JsonDocument.Parse(
            "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}").RootElement);
        string prompt = client.RenderPrompt(chat, new ChatOptions { Instructions = "You are terse.", Tools = [tool] });
        Assert.StartsWith("<｜begin▁of▁sentence｜>You are terse.\n\n## Tools", prompt, StringComparison.Ordinal);
        Assert.Contains("### get_weather\nDescription: Current weather\nParameters: {\"type\":\"object\"", prompt, StringComparison.Ordinal);
        Assert.Contains("<｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Paris\"}\n```<｜tool▁call▁end｜>", prompt, StringComparison.Ordinal);
        Assert.EndsWith("<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"temp\":20}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>", prompt, StringComparison.Ordinal);
        ChatResponse r = await client.GetResponseAsync(chat, Greedy20);
        Assert.Equal(20, r.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task ConcurrentRequestsTakeTurns()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using SharpSeekChatClient client = Client(m);
        Task<ChatResponse>[] tasks = Enumerable.Range(0, 3)
            .Select(i => client.GetResponseAsync([new AiChatMessage(ChatRole.User, "Turn " + i)], Greedy20)).ToArray();
        ChatResponse[] all = await Task.WhenAll(tasks);
        Assert.All(all, r => Assert.Equal(20, r.Usage!.OutputTokenCount));
        ChatResponse again = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, "Turn 1")], Greedy20);
        Assert.Equal(all[1].Text, again.Text);
        Assert.Same(client.Generator, client.GetService<Generator>());
        Assert.Same(client.Metadata, client.GetService<ChatClientMetadata>());
        Assert.Null(client.GetService<ChatClientMetadata>("key"));
    }

    [Fact]
    public void LoadReadsAModelDirectory()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using SharpSeekChatClient client = SharpSeekChatClient.Load(m.Directory);
        Assert.Equal(ChatTemplateKind.DeepSeekV3, client.Template.Kind);
        Assert.Equal(1024, client.Tokenizer.VocabSize);
        Assert.Equal(Path.GetFileName(m.Directory), client.Metadata.DefaultModelId);
        Assert.Throws<FileNotFoundException>(() => SharpSeekChatClient.Load(SharpSeek.Tests.Fixtures.Hf("v3-tiny"))); // no tokenizer.json
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(1000)]
    public void OutputParserSplitsReasoningTextAndToolCalls(int chunk)
    {
        string output = "Let me check.\n</think>\n\nChecking." + ToolCallParser.CallsBegin + ToolCallParser.CallBegin + "function"
            + ToolCallParser.Sep + "get_weather\n```json\n{\"city\": \"Paris\"}\n```" + ToolCallParser.CallEnd + ToolCallParser.CallsEnd;
        var p = new ChatOutputParser(startsInReasoning: true);
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        var calls = new List<ToolCall>();
        for (int i = 0; i < output.Length; i += chunk)
            Add(p.Push(output.Substring(i, Math.Min(chunk, output.Length - i))));
        Add(p.Flush());
        Assert.Equal("Let me check.\n", reasoning.ToString());
        Assert.Equal("\n\nChecking.", content.ToString());
        ToolCall call = Assert.Single(calls);
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("{\"city\": \"Paris\"}", call.Arguments);
        Assert.Equal(1, p.ToolCallCount);

        void Add(ChatDelta d)
        {
            reasoning.Append(d.Reasoning);
            content.Append(d.Content);
            calls.AddRange(d.ToolCalls);
        }
    }

    [Fact]
    public void V3OutputWithoutThinkIsAllContent()
    {
        var p = new ChatOutputParser(startsInReasoning: false);
        ChatDelta a = p.Push("Hello <thi");
        ChatDelta b = p.Push("ngs>");
        ChatDelta c = p.Flush();
        Assert.Equal("", a.Reasoning + b.Reasoning + c.Reasoning);
        Assert.Equal("Hello <things>", a.Content + b.Content + c.Content);
        Assert.True(new ChatDelta("", "", []).IsEmpty);
    }
}
