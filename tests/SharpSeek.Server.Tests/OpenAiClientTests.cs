// The server driven by the official OpenAI .NET client and by Microsoft.Extensions.AI's OpenAI adapter: chat whole and
// streamed with usage, a tool-call round trip (the chain model emits DeepSeek's call markup, then an answer after the
// tool output), reasoning_content for an R1-template model, text completions, models.
using System.ClientModel;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using SharpSeek.Inference;
using SharpSeek.Tokenizer;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;
using TemplateMessage = SharpSeek.Tokenizer.ChatMessage;

namespace SharpSeek.Server.Tests;

public class OpenAiClientTests
{
    // DeepSeek V3.1's call form (NAME<sep>ARGS), one token per segment
    private static readonly string[] ToolCallText = ["<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "get_weather", "<｜tool▁sep｜>", "{\"city\":\"Paris\"}", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>"];
    private const string Answer = "It is sunny.";

    internal static ChatClient Client(TestServer s, string? key = null) =>
        new(s.Server.ModelId, new ApiKeyCredential(key ?? "unused"), new OpenAIClientOptions { Endpoint = new Uri(s.Url + "/v1") });

    [Fact]
    public async Task ChatWholeAndStreamedAgreeAndCountUsage()
    {
        await using TestServer s = await TestServer.Start();
        ChatClient client = Client(s);
        OpenAI.Chat.ChatMessage[] chat = [new SystemChatMessage("Be brief."), new UserChatMessage("What is a latent cache?")];
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 20 };
        ChatCompletion whole = (await client.CompleteChatAsync(chat, options)).Value;

        string prompt = s.Session.Template!.Render([TemplateMessage.System("Be brief."), TemplateMessage.User("What is a latent cache?")], addGenerationPrompt: true);
        int[] ids = s.Tokenizer.Encode(prompt);
        Assert.Equal(ids.Length, whole.Usage.InputTokenCount);
        Assert.Equal(20, whole.Usage.OutputTokenCount);
        Assert.Equal(ids.Length + 20, whole.Usage.TotalTokenCount);
        Assert.Equal(ChatFinishReason.Length, whole.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, whole.Role);
        // the text is the model's greedy continuation of the rendered prompt
        Generator g = s.Session.CreateGenerator();
        GenerationResult want = g.Generate(ids, new GenerationOptions { MaxTokens = 20, Sampling = SamplingOptions.Greedy });
        Assert.Equal(ToolCallParser.Parse(want.Text).Content, whole.Content.Count == 0 ? "" : whole.Content[0].Text);

        var text = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        int updates = 0;
        await foreach (StreamingChatCompletionUpdate u in client.CompleteChatStreamingAsync(chat, options))
        {
            updates++;
            foreach (ChatMessageContentPart p in u.ContentUpdate)
                text.Append(p.Text);
            usage ??= u.Usage;
            finish ??= u.FinishReason;
        }
        Assert.True(updates > 3);
        Assert.Equal(whole.Content.Count == 0 ? "" : whole.Content[0].Text, text.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage); // the client asks for include_usage
        Assert.Equal(20, usage!.OutputTokenCount);
        // the same prompt again: all but its last token come from the prefix cache
        Assert.Equal(ids.Length - 1, usage.InputTokenDetails.CachedTokenCount);
    }

    [Fact]
    public async Task ToolCallRoundTripWithTheOpenAiClient()
    {
        await using TestServer s = await TestServer.Start(null, false, ("<｜Assistant｜>", ToolCallText), ("<｜tool▁outputs▁end｜>", [Answer]));
        ChatClient client = Client(s);
        ChatTool weather = ChatTool.CreateFunctionTool("get_weather", "The weather in a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        var options = new ChatCompletionOptions { Temperature = 0, Tools = { weather } };
        List<OpenAI.Chat.ChatMessage> chat = [new UserChatMessage("What is the weather in Paris?")];
        ChatCompletion first = (await client.CompleteChatAsync(chat, options)).Value;
        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        ChatToolCall call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("Paris", JsonDocument.Parse(call.FunctionArguments).RootElement.GetProperty("city").GetString());
        Assert.StartsWith("call_", call.Id);

        chat.Add(new AssistantChatMessage(first.ToolCalls));
        chat.Add(new ToolChatMessage(call.Id, """{"sky":"clear"}"""));
        ChatCompletion second = (await client.CompleteChatAsync(chat, options)).Value;
        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal(Answer, second.Content[0].Text);
        Assert.Empty(second.ToolCalls);

        // streamed: the call arrives as one tool-call update with its index, id, name and arguments
        var streamed = new List<StreamingChatToolCallUpdate>();
        ChatFinishReason? finish = null;
        await foreach (StreamingChatCompletionUpdate u in client.CompleteChatStreamingAsync([new UserChatMessage("Weather?")], options))
        {
            streamed.AddRange(u.ToolCallUpdates);
            finish ??= u.FinishReason;
        }
        StreamingChatToolCallUpdate su = Assert.Single(streamed);
        Assert.Equal(0, su.Index);
        Assert.Equal("get_weather", su.FunctionName);
        Assert.Equal("{\"city\":\"Paris\"}", su.FunctionArgumentsUpdate.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
    }

    [Fact]
    public async Task ToolCallRoundTripWithMicrosoftExtensionsAi()
    {
        await using TestServer s = await TestServer.Start(null, false, ("<｜Assistant｜>", ToolCallText), ("<｜tool▁outputs▁end｜>", [Answer]));
        var cities = new List<string>();
        AIFunction weather = AIFunctionFactory.Create((string city) =>
        {
            cities.Add(city);
            return new { sky = "clear" };
        }, "get_weather", "The weather in a city");
        IChatClient client = Client(s).AsIChatClient().AsBuilder().UseFunctionInvocation().Build();
        ChatResponse r = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, "What is the weather in Paris?")],
                                                       new ChatOptions { Temperature = 0, Tools = [weather] });
        Assert.Equal(["Paris"], cities);
        Assert.Equal(Answer, r.Text);
        Assert.NotNull(r.Usage);
        Assert.True(r.Usage!.InputTokenCount > 0);
    }

    [Fact]
    public async Task MicrosoftExtensionsAiStreamsWhatItGetsWhole()
    {
        await using TestServer s = await TestServer.Start();
        IChatClient plain = Client(s).AsIChatClient();
        var chat = new List<AiChatMessage> { new(ChatRole.System, "Be brief."), new(ChatRole.User, "Hello") };
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 12 };
        ChatResponse whole = await plain.GetResponseAsync(chat, options);
        List<ChatResponseUpdate> updates = await plain.GetStreamingResponseAsync(chat, options).ToListAsync();
        Assert.True(updates.Count > 3);
        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(12, whole.Usage!.OutputTokenCount);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Length, whole.FinishReason);
        UsageContent usage = Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>());
        Assert.Equal(12, usage.Details.OutputTokenCount);
        Assert.Equal(whole.Usage.InputTokenCount, usage.Details.InputTokenCount);
    }

    [Fact]
    public async Task R1TemplateModelsReturnReasoningContent()
    {
        await using TestServer s = await TestServer.Start(null, r1: true, ("<｜Assistant｜><think>\n", ["Rain is likely.", "</think>", "Take an umbrella."]));
        var body = new { messages = new[] { new { role = "user", content = "Should I take an umbrella?" } }, temperature = 0 };
        using HttpResponseMessage r = await s.Http.PostAsJsonAsync("v1/chat/completions", body);
        Assert.Equal(System.Net.HttpStatusCode.OK, r.StatusCode);
        JsonElement m = (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("Rain is likely.", m.GetProperty("reasoning_content").GetString());
        Assert.Equal("Take an umbrella.", m.GetProperty("content").GetString());
        JsonElement usage = (await (await s.Http.PostAsJsonAsync("v1/chat/completions", body)).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("usage");
        Assert.Equal(2, usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32()); // "Rain is likely." and </think>
        Assert.Equal(4, usage.GetProperty("completion_tokens").GetInt32());

        // streamed: reasoning_content deltas, then content deltas
        using var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = JsonContent.Create(new { body.messages, temperature = 0, stream = true }) };
        using HttpResponseMessage sr = await s.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", sr.Content.Headers.ContentType!.MediaType);
        var reasoning = new System.Text.StringBuilder();
        var content = new System.Text.StringBuilder();
        List<JsonElement> events = await Sse.Read(sr);
        foreach (JsonElement e in events)
        {
            JsonElement delta = e.GetProperty("choices")[0].GetProperty("delta");
            if (delta.TryGetProperty("reasoning_content", out JsonElement rc))
            {
                Assert.Equal(0, content.Length); // reasoning comes first
                reasoning.Append(rc.GetString());
            }
            if (delta.TryGetProperty("content", out JsonElement c))
                content.Append(c.GetString());
        }
        Assert.Equal("Rain is likely.", reasoning.ToString());
        Assert.Equal("Take an umbrella.", content.ToString());
        // the OpenAI client reads the answer (it does not know reasoning_content)
        ChatCompletion viaClient = (await Client(s).CompleteChatAsync([new UserChatMessage("Should I take an umbrella?")], new ChatCompletionOptions { Temperature = 0 })).Value;
        Assert.Equal("Take an umbrella.", viaClient.Content[0].Text);
    }

    [Fact]
    public async Task NamedToolChoiceStartsTheCall()
    {
        // the forced prefix ends with "```json\n": the chain model continues with the arguments and the closing fence
        await using TestServer s = await TestServer.Start(null, false, ("json\n", ["{\"q\":1}", "\n```", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>"]));
        var body = JsonDocument.Parse("""
            {"messages":[{"role":"user","content":"Search."}],"temperature":0,
             "tools":[{"type":"function","function":{"name":"search","parameters":{"type":"object"}}}],
             "tool_choice":{"type":"function","function":{"name":"search"}}}
            """).RootElement;
        JsonElement m = (await (await s.Http.PostAsJsonAsync("v1/chat/completions", body)).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("choices")[0];
        Assert.Equal("tool_calls", m.GetProperty("finish_reason").GetString());
        JsonElement call = m.GetProperty("message").GetProperty("tool_calls")[0];
        Assert.Equal("search", call.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("{\"q\":1}", call.GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal(JsonValueKind.Null, m.GetProperty("message").GetProperty("content").ValueKind);
    }

    [Fact]
    public async Task TextCompletionsAndModels()
    {
        await using TestServer s = await TestServer.Start();
        JsonElement models = await s.Http.GetFromJsonAsync<JsonElement>("v1/models");
        Assert.Equal(s.Server.ModelId, models.GetProperty("data")[0].GetProperty("id").GetString());
        Assert.Equal(s.Server.ModelId, (await s.Http.GetFromJsonAsync<JsonElement>("v1/models/" + s.Server.ModelId)).GetProperty("id").GetString());

        using HttpResponseMessage r = await s.Http.PostAsJsonAsync("v1/completions", new { prompt = "The latent cache", max_tokens = 9, temperature = 0, stop = (string?)null });
        JsonElement c = await r.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("text_completion", c.GetProperty("object").GetString());
        int[] ids = s.Tokenizer.Encode("The latent cache", addSpecialTokens: true);
        Assert.Equal(ids.Length, c.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(9, c.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        GenerationResult want = s.Session.CreateGenerator().Generate(ids, new GenerationOptions { MaxTokens = 9, Sampling = SamplingOptions.Greedy });
        Assert.Equal(want.Text, c.GetProperty("choices")[0].GetProperty("text").GetString());

        // token ids in, streamed out
        using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = JsonContent.Create(new { prompt = ids, max_tokens = 9, temperature = 0, stream = true }) };
        using HttpResponseMessage sr = await s.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        List<JsonElement> events = await Sse.Read(sr);
        Assert.Equal(want.Text, string.Concat(events.Select(e => e.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.Equal("length", events[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }
}

/// <summary>Reads a server-sent event stream to its <c>data: [DONE]</c>.</summary>
internal static class Sse
{
    public static async Task<List<JsonElement>> Read(HttpResponseMessage r)
    {
        using var reader = new StreamReader(await r.Content.ReadAsStreamAsync());
        var events = new List<JsonElement>();
        bool done = false;
        while (await reader.ReadLineAsync() is string line)
        {
            if (line.Length == 0)
                continue;
            Assert.StartsWith("data: ", line);
            if (line == "data: [DONE]")
            {
                done = true;
                continue;
            }
            Assert.False(done, "data after [DONE]");
            events.Add(JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone());
        }
        Assert.True(done, "no data: [DONE]");
        return events;
    }
}
