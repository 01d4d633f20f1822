// The server with DeepSeek-V3.1, V3.2 and V4 chat formats (docs/chat-formats.md): the request's DeepSeek fields
// "thinking" and "reasoning_effort" over serve --think's default, reasoning_content present exactly in thinking mode,
// V3.2's DSML tool calls through a round trip with the official OpenAI client, tool_choice forcing in V3.1's and
// V4's own markup, and 400s naming the field for bad values. The chain model (TestServers.cs) emits chosen text after
// chosen prompt ends, so each test also proves which prompt the server rendered.
#pragma warning disable SCME0001 // JsonPatch (the OpenAI client's way to send fields it does not model, like "thinking")
using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI.Chat;
using SharpSeek.Tokenizer;
using TemplateMessage = SharpSeek.Tokenizer.ChatMessage;

namespace SharpSeek.Server.Tests;

public class ChatFormatTests
{
    private const string Reasoning = "Rain is likely.", Answer = "Take an umbrella.";

    // V3.1 in thinking mode: the prompt ends <｜Assistant｜><think>, the model reasons, closes the block and answers;
    // in chat mode the prompt ends <｜Assistant｜></think>, whose successor is the answer alone
    private static Task<TestServer> V31(ServerOptions? options = null) =>
        TestServer.Start(ChatTemplateKind.DeepSeekV31, options, ["<think>", "</think>"], ("<｜Assistant｜><think>", [Reasoning, "</think>", Answer]));

    private static ChatCompletionOptions Thinking(string? type)
    {
        var o = new ChatCompletionOptions { Temperature = 0 };
        if (type is not null)
            o.Patch.Set("$.thinking"u8, BinaryData.FromString($$"""{"type":"{{type}}"}"""));
        return o;
    }

    private static JsonElement RawMessage(ClientResult<ChatCompletion> r) =>
        JsonDocument.Parse(r.GetRawResponse().Content.ToString()).RootElement.GetProperty("choices")[0].GetProperty("message").Clone();

    [Fact]
    public async Task V31ThinkingOnAndOffWithTheOpenAiClient()
    {
        await using TestServer s = await V31();
        ChatClient client = OpenAiClientTests.Client(s);
        UserChatMessage[] chat = [new("Should I take an umbrella?")];

        // on: the answer as content, the think block as DeepSeek's reasoning_content, counted as reasoning tokens
        ClientResult<ChatCompletion> on = await client.CompleteChatAsync(chat, Thinking("enabled"));
        Assert.Equal(Answer, on.Value.Content[0].Text);
        Assert.Equal(Reasoning, RawMessage(on).GetProperty("reasoning_content").GetString());
        Assert.Equal(2, on.Value.Usage.OutputTokenDetails.ReasoningTokenCount); // the reasoning and </think>
        Assert.Equal(4, on.Value.Usage.OutputTokenCount);
        string promptOn = s.Session.Template!.Render([TemplateMessage.User("Should I take an umbrella?")], new ChatRenderOptions { Thinking = true });
        Assert.EndsWith("<｜Assistant｜><think>", promptOn);
        Assert.Equal(s.Tokenizer.Encode(promptOn).Length, on.Value.Usage.InputTokenCount);

        // off, asked for and by default (V3.1's default is off): no reasoning_content at all
        foreach (string? type in new[] { "disabled", null })
        {
            ClientResult<ChatCompletion> off = await client.CompleteChatAsync(chat, Thinking(type));
            Assert.Equal(Answer, off.Value.Content[0].Text);
            Assert.False(RawMessage(off).TryGetProperty("reasoning_content", out _), $"thinking {type ?? "unset"}: reasoning_content present");
            Assert.Equal(0, off.Value.Usage.OutputTokenDetails.ReasoningTokenCount);
            Assert.Equal(2, off.Value.Usage.OutputTokenCount); // the answer and EOS
            Assert.Equal(on.Value.Usage.InputTokenCount, off.Value.Usage.InputTokenCount); // <think> and </think> are one token each here
        }

        // streamed: reasoning_content deltas before content deltas when on, none when off
        foreach (bool thinking in new[] { true, false })
        {
            (string reasoning, string content, bool any) = await StreamedChat(s, thinking ? """{"type":"enabled"}""" : """{"type":"disabled"}""");
            Assert.Equal(thinking ? Reasoning : "", reasoning);
            Assert.Equal(thinking, any);
            Assert.Equal(Answer, content);
        }
    }

    [Fact]
    public async Task ServeThinkOnIsTheDefaultThatARequestOverrides()
    {
        await using TestServer s = await V31(new ServerOptions { RenderDefaults = new ChatRenderOptions { Thinking = true } });
        ChatClient client = OpenAiClientTests.Client(s);
        ClientResult<ChatCompletion> byDefault = await client.CompleteChatAsync([new UserChatMessage("Umbrella?")], Thinking(null));
        Assert.Equal(Reasoning, RawMessage(byDefault).GetProperty("reasoning_content").GetString());
        Assert.Equal(Answer, byDefault.Value.Content[0].Text);
        ClientResult<ChatCompletion> off = await client.CompleteChatAsync([new UserChatMessage("Umbrella?")], Thinking("disabled"));
        Assert.False(RawMessage(off).TryGetProperty("reasoning_content", out _));
        Assert.Equal(Answer, off.Value.Content[0].Text);
    }

    [Fact]
    public async Task ADefaultThinkingModeTheTemplateLacksIsRefused()
    {
        using var m = Inference.Tests.TinyChatModel.Create();
        using var session = Inference.ModelSession.Open(m.Directory, new Inference.ModelSessionOptions { Tokenizer = Inference.TokenizerLoad.Required });
        var e = Assert.Throws<ArgumentException>(() => SharpSeekServer.Create(session, new ServerOptions { Port = 0, RenderDefaults = new ChatRenderOptions { Thinking = true } }));
        Assert.StartsWith("thinking:", e.Message);
    }

    private static async Task<(string Reasoning, string Content, bool AnyReasoningDelta)> StreamedChat(TestServer s, string thinkingJson)
    {
        string body = $$"""{"messages":[{"role":"user","content":"Should I take an umbrella?"}],"temperature":0,"stream":true,"thinking":{{thinkingJson}}}""";
        using var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using HttpResponseMessage r = await s.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        bool any = false;
        foreach (JsonElement e in await Sse.Read(r))
        {
            JsonElement delta = e.GetProperty("choices")[0].GetProperty("delta");
            if (delta.TryGetProperty("reasoning_content", out JsonElement rc))
            {
                Assert.Equal(0, content.Length);
                reasoning.Append(rc.GetString());
                any = true;
            }
            if (delta.TryGetProperty("content", out JsonElement c))
                content.Append(c.GetString());
        }
        return (reasoning.ToString(), content.ToString(), any);
    }

    // V3.2's DSML block, one token per segment; it is what the encoder writes for get_weather(city="Paris")
    private static readonly string[] DsmlCall =
    [
        "\n\n<｜DSML｜function_calls>\n", "<｜DSML｜invoke name=\"get_weather\">\n",
        "<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n", "</｜DSML｜invoke>\n", "</｜DSML｜function_calls>",
    ];

    [Fact]
    public async Task DsmlToolCallRoundTripWithTheOpenAiClient()
    {
        // chat mode: after the user turn the prompt ends <｜Assistant｜></think> (-> the call); after the tool results
        // it ends "</function_results>\n\n</think>" (-> the answer), told apart by "\n\n</think>" being a token here
        await using TestServer s = await TestServer.Start(ChatTemplateKind.DeepSeekV32, null, ["</think>", "\n\n</think>"],
            ("<｜Assistant｜></think>", DsmlCall), ("\n\n</think>", ["It is sunny."]));
        ChatClient client = OpenAiClientTests.Client(s);
        ChatTool weather = ChatTool.CreateFunctionTool("get_weather", "The weather in a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        var options = new ChatCompletionOptions { Temperature = 0, Tools = { weather } };
        List<OpenAI.Chat.ChatMessage> chat = [new UserChatMessage("What is the weather in Paris?")];

        ChatCompletion first = (await client.CompleteChatAsync(chat, options)).Value;
        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        Assert.Empty(first.Content);
        ChatToolCall call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city": "Paris"}""", call.FunctionArguments.ToString()); // DeepSeek's decoder's JSON
        // the encoder printed the tool's schema in the system prompt
        var tools = ToolDefinition.ParseArray(JsonDocument.Parse("""[{"type":"function","function":{"name":"get_weather","description":"The weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]""").RootElement);
        string prompt1 = s.Session.Template!.Render([TemplateMessage.User("What is the weather in Paris?")], new ChatRenderOptions { Tools = tools });
        Assert.Contains("\"name\": \"get_weather\"", prompt1);
        Assert.Equal(s.Tokenizer.Encode(prompt1).Length, first.Usage.InputTokenCount);

        chat.Add(new AssistantChatMessage(first.ToolCalls));
        chat.Add(new ToolChatMessage(call.Id, """{"sky":"clear"}"""));
        ChatCompletion second = (await client.CompleteChatAsync(chat, options)).Value;
        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal("It is sunny.", second.Content[0].Text);
        // the call came back as the same DSML the model wrote: the whole first exchange (prompt and reply up to its
        // EOS) is a prefix of the second prompt and comes from the prefix cache
        // EOS (the last output token) was sampled but never run through the model, so it is not in the cache
        Assert.Equal(first.Usage.InputTokenCount + first.Usage.OutputTokenCount - 1, second.Usage.InputTokenDetails.CachedTokenCount);

        // streamed: one tool-call update with its index, id, name and arguments
        var streamed = new List<StreamingChatToolCallUpdate>();
        ChatFinishReason? finish = null;
        await foreach (StreamingChatCompletionUpdate u in client.CompleteChatStreamingAsync([new UserChatMessage("Weather?")], options))
        {
            streamed.AddRange(u.ToolCallUpdates);
            Assert.DoesNotContain(u.ContentUpdate, p => p.Text.Length > 0);
            finish ??= u.FinishReason;
        }
        StreamingChatToolCallUpdate su = Assert.Single(streamed);
        Assert.Equal(0, su.Index);
        Assert.Equal("get_weather", su.FunctionName);
        Assert.Equal("""{"city": "Paris"}""", su.FunctionArgumentsUpdate.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
    }

    [Fact]
    public async Task ToolChoiceForcesTheTemplatesOwnMarkup()
    {
        // V3.1: the forced prefix ends NAME<｜tool▁sep｜>; the model writes the arguments and closes the call
        const string Tools = """
            "tools":[{"type":"function","function":{"name":"search","parameters":{"type":"object"}}}],
            "tool_choice":{"type":"function","function":{"name":"search"}}
            """;
        await using (TestServer s = await TestServer.Start(ChatTemplateKind.DeepSeekV31, null, ["<｜tool▁sep｜>"],
                         ("<｜tool▁sep｜>", ["{\"q\":1}", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>"])))
        {
            JsonElement c = (await Post(s, $$"""{"messages":[{"role":"user","content":"Search."}],"temperature":0,{{Tools}}}""")).GetProperty("choices")[0];
            AssertCall(c, "search", """{"q":1}""");
            Assert.False(c.GetProperty("message").TryGetProperty("reasoning_content", out _));
        }

        // V4 (thinking on by default): the think block is closed, then the DSML block and the invoke of the function
        const string Invoke = "<｜DSML｜invoke name=\"search\">\n";
        await using (TestServer s = await TestServer.Start(ChatTemplateKind.DeepSeekV4, null, [Invoke],
                         (Invoke, ["<｜DSML｜parameter name=\"q\" string=\"false\">1</｜DSML｜parameter>\n", "</｜DSML｜invoke>\n", "</｜DSML｜tool_calls>"])))
        {
            JsonElement c = (await Post(s, $$"""{"messages":[{"role":"user","content":"Search."}],"temperature":0,{{Tools}}}""")).GetProperty("choices")[0];
            AssertCall(c, "search", """{"q": 1}""");
            Assert.Equal("", c.GetProperty("message").GetProperty("reasoning_content").GetString()); // forcing skips the reasoning
            // "required" leaves the name to the model: the prefix stops inside invoke name="
            JsonElement r = await Post(s, """{"messages":[{"role":"user","content":"Search."}],"temperature":0,"max_tokens":1,"tool_choice":"required","tools":[{"type":"function","function":{"name":"search"}}]}""");
            Assert.Equal(1, r.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            string prompt = s.Session.Template!.Render([TemplateMessage.User("Search.")],
                new ChatRenderOptions { Tools = ToolDefinition.ParseArray(JsonDocument.Parse("""[{"type":"function","function":{"name":"search"}}]""").RootElement) });
            string forced = "</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"";
            Assert.Equal(s.Tokenizer.Encode(prompt + forced).Length, r.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        }
    }

    [Fact]
    public async Task ReasoningEffortMaxReachesV4sPrompt()
    {
        await using TestServer s = await TestServer.Start(ChatTemplateKind.DeepSeekV4, null, []);
        TemplateMessage[] messages = [TemplateMessage.User("Think hard.")];
        foreach ((string? effort, ReasoningEffort? level) in new (string?, ReasoningEffort?)[] { (null, null), ("max", ReasoningEffort.Max), ("low", ReasoningEffort.Low) })
        {
            string field = effort is null ? "" : $",\"reasoning_effort\":\"{effort}\"";
            JsonElement c = await Post(s, $$"""{"messages":[{"role":"user","content":"Think hard."}],"max_tokens":1{{field}}}""");
            string prompt = s.Session.Template!.Render(messages, new ChatRenderOptions { ReasoningEffort = level });
            Assert.Equal(s.Tokenizer.Encode(prompt).Length, c.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        }
        string plain = s.Session.Template!.Render(messages, new ChatRenderOptions());
        Assert.NotEqual(plain, s.Session.Template!.Render(messages, new ChatRenderOptions { ReasoningEffort = ReasoningEffort.Max }));
    }

    [Fact]
    public async Task BadThinkingAndReasoningEffortValuesAre400sNamingTheField()
    {
        await using TestServer v31 = await TestServer.Start(ChatTemplateKind.DeepSeekV31, null, []);
        static string With(string field) => """{"messages":[{"role":"user","content":"x"}],"max_tokens":1,""" + field + "}";
        await BadRequest(v31, With("\"thinking\":{\"type\":\"auto\"}"), "thinking.type");
        await BadRequest(v31, With("\"thinking\":{\"mode\":\"enabled\"}"), "thinking");
        await BadRequest(v31, With("\"thinking\":7"), "thinking.type");
        await BadRequest(v31, With("\"reasoning_effort\":\"extreme\""), "reasoning_effort");
        await BadRequest(v31, With("\"reasoning_effort\":3"), "reasoning_effort");
        await Post(v31, With("\"thinking\":{\"type\":\"enabled\"},\"reasoning_effort\":\"medium\"")); // and it still serves

        // V3's template has no toggle: asking for thinking either way is refused rather than ignored
        await using TestServer v3 = await TestServer.Start();
        JsonElement e = await BadRequest(v3, With("\"thinking\":{\"type\":\"disabled\"}"), "thinking");
        Assert.Contains("v3", e.GetProperty("message").GetString());
        await Post(v3, With("\"reasoning_effort\":\"high\"")); // reasoning_effort renders nothing outside V4
    }

    private static async Task<JsonElement> BadRequest(TestServer s, string body, string param)
    {
        using HttpResponseMessage r = await s.Http.PostAsync("v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        JsonElement e = (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("invalid_request_error", e.GetProperty("type").GetString());
        Assert.Equal(param, e.GetProperty("param").GetString());
        return e;
    }

    private static async Task<JsonElement> Post(TestServer s, string body)
    {
        using HttpResponseMessage r = await s.Http.PostAsync("v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static void AssertCall(JsonElement choice, string name, string arguments)
    {
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        JsonElement call = Assert.Single(choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray());
        Assert.Equal(name, call.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal(arguments, call.GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("message").GetProperty("content").ValueKind);
    }
}
