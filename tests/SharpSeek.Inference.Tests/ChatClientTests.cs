// The IChatClient on the tiny model with a tokenizer (garbage text from random weights, but real counts, options,
// streaming and template handling), and the output splitter on crafted DeepSeek output.
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using SharpSeek.Model;
using SharpSeek.Tokenizer;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using TemplateMessage = SharpSeek.Tokenizer.ChatMessage;

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

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(1000)]
    public void V31OutputSplitsInBothModes(int chunk)
    {
        string calls = ToolCallParser.CallsBegin + ToolCallParser.CallBegin + "get_weather" + ToolCallParser.Sep + "{\"city\": \"Paris\"}"
            + ToolCallParser.CallEnd + ToolCallParser.CallBegin + "get_time" + ToolCallParser.Sep + "{}" + ToolCallParser.CallEnd + ToolCallParser.CallsEnd;
        ChatTemplate v31 = ChatTemplate.Create(ChatTemplateKind.DeepSeekV31);
        // thinking: the prompt ended with <think>, the reply closes it
        (string reasoning, string content, List<ToolCall> found) = Split(ChatOutputParser.For(v31, new ChatRenderOptions { Thinking = true }),
                                                                          "The user wants weather.</think>Checking." + calls, chunk);
        Assert.Equal("The user wants weather.", reasoning);
        Assert.Equal("Checking.", content);
        Assert.Equal(["get_weather", "get_time"], found.Select(c => c.Name));
        Assert.Equal("{\"city\": \"Paris\"}", found[0].Arguments);
        Assert.Equal("{}", found[1].Arguments);
        // non-thinking: the prompt ended with </think>, all text is content
        (reasoning, content, found) = Split(ChatOutputParser.For(v31, new ChatRenderOptions { Thinking = false }), "Sure." + calls, chunk);
        Assert.Equal("", reasoning);
        Assert.Equal("Sure.", content);
        Assert.Equal(2, found.Count);
    }

    [Fact]
    public void TheReplyStartsInReasoningOnlyWhereThePromptLeavesTheThinkBlockOpen()
    {
        var thinking = new ChatRenderOptions { Thinking = true };
        TemplateMessage[] asked = [TemplateMessage.User("Weather in Paris?")];
        TemplateMessage[] answered =
        [
            .. asked,
            new TemplateMessage("assistant", null) { ToolCalls = [new ToolCall("c1", "get_weather", "{\"city\": \"Paris\"}")] },
            TemplateMessage.Tool("{\"sky\": \"clear\"}", "c1"),
        ];
        foreach (ChatTemplateKind kind in new[] { ChatTemplateKind.DeepSeekV31, ChatTemplateKind.DeepSeekV32, ChatTemplateKind.DeepSeekV4 })
        {
            ChatTemplate t = ChatTemplate.Create(kind);
            Assert.True(ChatOutputParser.For(t, thinking, t.Render(asked, thinking)).StartsInReasoning, $"{kind} after the user");
            Assert.False(ChatOutputParser.For(t, thinking with { Thinking = false }, t.Render(asked, thinking with { Thinking = false })).StartsInReasoning);
        }
        // V3.1 opens no think block after tool output (the answer follows directly), V3.2 and V4 do
        ChatTemplate v31 = ChatTemplate.Create(ChatTemplateKind.DeepSeekV31);
        string prompt = v31.Render(answered, thinking);
        Assert.EndsWith("<｜tool▁output▁end｜>", prompt);
        ChatOutputParser p = ChatOutputParser.For(v31, thinking, prompt);
        Assert.False(p.StartsInReasoning);
        Assert.Equal("It is sunny.", p.Push("It is sunny.").Content);
        foreach (ChatTemplateKind kind in new[] { ChatTemplateKind.DeepSeekV32, ChatTemplateKind.DeepSeekV4 })
        {
            ChatTemplate t = ChatTemplate.Create(kind);
            Assert.True(ChatOutputParser.For(t, thinking, t.Render(answered, thinking)).StartsInReasoning, $"{kind} after tool results");
        }
        ChatTemplate r1 = ChatTemplate.Create(ChatTemplateKind.DeepSeekR1);
        Assert.True(ChatOutputParser.For(r1, new ChatRenderOptions(), r1.Render(asked, new ChatRenderOptions())).StartsInReasoning);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1000)]
    public void V4DsmlOutputSplits(int chunk)
    {
        string output = "Need data.</think>Let me look.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"search\">\n"
            + "<｜DSML｜parameter name=\"q\" string=\"true\">深度 \"x\"</｜DSML｜parameter>\n<｜DSML｜parameter name=\"n\" string=\"false\">3</｜DSML｜parameter>\n"
            + "</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
        ChatOutputParser p = ChatOutputParser.For(ChatTemplate.Create(ChatTemplateKind.DeepSeekV4), new ChatRenderOptions());
        (string reasoning, string content, List<ToolCall> found) = Split(p, output, chunk);
        Assert.Equal("Need data.", reasoning);
        Assert.Equal("Let me look.", content);
        ToolCall call = Assert.Single(found);
        Assert.Equal("search", call.Name);
        Assert.Equal("{\"q\": \"深度 \\\"x\\\"\", \"n\": 3}", call.Arguments);
        Assert.Equal(1, p.ToolCallCount);
    }

    private static (string Reasoning, string Content, List<ToolCall> Calls) Split(ChatOutputParser p, string output, int chunk)
    {
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        var calls = new List<ToolCall>();
        for (int i = 0; i < output.Length; i += chunk)
            Add(p.Push(output.Substring(i, Math.Min(chunk, output.Length - i))));
        Add(p.Flush());
        return (reasoning.ToString(), content.ToString(), calls);

        void Add(ChatDelta d)
        {
            reasoning.Append(d.Reasoning);
            content.Append(d.Content);
            calls.AddRange(d.ToolCalls);
        }
    }

    [Fact]
    public void ThinkingFollowsTheRequestFieldThenTheDefaults()
    {
        using TinyChatModel m = TinyChatModel.Create();
        var g = new Generator(new Transformer(m.Weights), m.Tokenizer);
        using var client = new SharpSeekChatClient(g, ChatTemplate.Create(ChatTemplateKind.DeepSeekV31));
        AiChatMessage[] chat = [new(ChatRole.User, "Hi")];
        Assert.EndsWith("<｜Assistant｜></think>", client.RenderPrompt(chat), StringComparison.Ordinal); // V3.1's default: off
        var on = new ChatOptions { AdditionalProperties = new() { ["thinking"] = JsonDocument.Parse("{\"type\": \"enabled\"}").RootElement } };
        Assert.EndsWith("<｜Assistant｜><think>", client.RenderPrompt(chat, on), StringComparison.Ordinal);
        var off = new ChatOptions { AdditionalProperties = new() { ["thinking"] = new Dictionary<string, string> { ["type"] = "disabled" } } };
        using var thinkingClient = new SharpSeekChatClient(g, ChatTemplate.Create(ChatTemplateKind.DeepSeekV31)) { RenderDefaults = new ChatRenderOptions { Thinking = true } };
        Assert.EndsWith("<｜Assistant｜><think>", thinkingClient.RenderPrompt(chat), StringComparison.Ordinal);
        Assert.EndsWith("<｜Assistant｜></think>", thinkingClient.RenderPrompt(chat, off), StringComparison.Ordinal);
        var bad = new ChatOptions { AdditionalProperties = new() { ["thinking"] = "sometimes" } };
        Assert.StartsWith("thinking.type", Assert.Throws<ArgumentException>(() => client.RenderPrompt(chat, bad)).Message, StringComparison.Ordinal);
        // the V3 template has no toggle
        using var v3 = new SharpSeekChatClient(g, ChatTemplate.Create(ChatTemplateKind.DeepSeekV3));
        Assert.Throws<ArgumentException>(() => v3.RenderPrompt(chat, on));
    }

    [Fact]
    public async Task V31ThinkingReplyIsReasoningUntilItCloses()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using var client = new SharpSeekChatClient(new Generator(new Transformer(m.Weights), m.Tokenizer), ChatTemplate.Create(ChatTemplateKind.DeepSeekV31),
                                                   new GenerationOptions { MaxTokens = 64, IgnoreEos = true }) { RenderDefaults = new ChatRenderOptions { Thinking = true } };
        ChatResponse r = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, "Think")], Greedy20);
        string reasoning = string.Concat(r.Messages.SelectMany(x => x.Contents).OfType<TextReasoningContent>().Select(c => c.Text));
        // random weights never write </think>: every token is reasoning
        Assert.False(string.IsNullOrEmpty(reasoning));
        Assert.Equal("", r.Text);
        Assert.Equal(20, r.Usage!.ReasoningTokenCount);
    }

    [Fact]
    public void V4ToolsArePrintedByTheEncoder()
    {
        using TinyChatModel m = TinyChatModel.Create();
        using var client = new SharpSeekChatClient(new Generator(new Transformer(m.Weights), m.Tokenizer), ChatTemplate.Create(ChatTemplateKind.DeepSeekV4));
        AIFunction weather = AIFunctionFactory.Create((string city) => "sunny", "get_weather", "Weather of a city");
        string prompt = client.RenderPrompt([new AiChatMessage(ChatRole.User, "Paris?")], new ChatOptions { Tools = [weather], Instructions = "Be brief." });
        Assert.StartsWith("<｜begin▁of▁sentence｜>Be brief.\n\n## Tools\n", prompt, StringComparison.Ordinal);
        Assert.Contains("{\"name\": \"get_weather\", \"description\": \"Weather of a city\", \"parameters\": {", prompt, StringComparison.Ordinal);
        Assert.EndsWith("<｜User｜>Paris?<｜Assistant｜><think>", prompt, StringComparison.Ordinal);
    }
}
