// DeepSeek-V3.2 and V4 prompt encoding and DSML tool calls against DeepSeek's own test cases: Data/dsv4 (the four
// cases of encoding/tests in deepseek-ai/DeepSeek-V4-Pro, which test_encoding_dsv4.py checks), Data/dsv32 (the three of
// encoding/ in deepseek-ai/DeepSeek-V3.2, commit c69397e) and Data/v4_cases.json (more conversations and options
// encoded, and replies parsed, by encoding_dsv4.py through Data/make_v4_cases.py).
using System.Text;
using System.Text.Json;

namespace SharpSeek.Tokenizer.Tests;

public sealed class ChatTemplateDsmlTests
{
    private static readonly JsonElement s_v4 = Read("v4_cases.json");

    private static JsonElement Read(params string[] path)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine([AppContext.BaseDirectory, "Data", .. path])));
        return doc.RootElement.Clone();
    }

    private static string Text(params string[] path) => File.ReadAllText(Path.Combine([AppContext.BaseDirectory, "Data", .. path]));

    // test_encoding_dsv4.py: case 1 puts the file's tools on messages[0]; cases 1-3 in thinking mode, 4 in chat mode
    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(3, true)]
    [InlineData(4, false)]
    public void V4_renders_deepseeks_test_cases(int index, bool thinking)
    {
        ChatConversation c = ChatMessage.ParseConversationJson(Text("dsv4", $"test_input_{index}.json"));
        string gold = Text("dsv4", $"test_output_{index}.txt");
        var options = new ChatRenderOptions { Thinking = thinking, Tools = c.Tools };

        string prompt = ChatTemplate.Create(ChatTemplateKind.DeepSeekV4).Render(c.Messages, options);

        Assert.Equal(gold, prompt);
        Assert.Equal(Oracle.Encode(Oracle.V3, gold), TestData.V3.Encode(prompt));
    }

    // the parse half of test_case_1 and test_case_2
    [Fact]
    public void V4_parses_the_replies_of_deepseeks_test_cases()
    {
        const string Marker = "<｜Assistant｜><think>";
        string one = Text("dsv4", "test_output_1.txt");
        int firstStart = one.IndexOf(Marker, StringComparison.Ordinal) + Marker.Length;
        int firstEnd = one.IndexOf("<｜User｜>", firstStart, StringComparison.Ordinal);
        DsmlCompletion call = DsmlParser.ParseCompletion(one[firstStart..firstEnd], thinking: true, ToolCallFormat.DsmlV4);
        Assert.Equal("The user wants to know the weather in Beijing. I should use the get_weather tool.", call.Reasoning);
        Assert.Equal("", call.Content);
        ToolCall weather = Assert.Single(call.ToolCalls);
        Assert.Equal("get_weather", weather.Name);
        Assert.Equal("{\"location\": \"Beijing\", \"unit\": \"celsius\"}", weather.Arguments);

        DsmlCompletion final = DsmlParser.ParseCompletion(one[(one.LastIndexOf(Marker, StringComparison.Ordinal) + Marker.Length)..], true, ToolCallFormat.DsmlV4);
        Assert.Equal("Got the weather data. Let me format a nice response.", final.Reasoning);
        Assert.Contains("22°C", final.Content, StringComparison.Ordinal);
        Assert.Empty(final.ToolCalls);

        string two = Text("dsv4", "test_output_2.txt");
        DsmlCompletion last = DsmlParser.ParseCompletion(two[(two.LastIndexOf(Marker, StringComparison.Ordinal) + Marker.Length)..], true, ToolCallFormat.DsmlV4);
        Assert.Equal("The user asks about the capital of France. It is Paris.", last.Reasoning);
        Assert.Equal("The capital of France is Paris.", last.Content);
        Assert.DoesNotContain("The user said hello", two, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("test_input.json", "test_output.txt")]
    [InlineData("test_input_search_w_date.json", "test_output_search_w_date.txt")]
    [InlineData("test_input_search_wo_date.json", "test_output_search_wo_date.txt")]
    public void V32_renders_deepseeks_test_cases(string input, string output)
    {
        ChatConversation c = ChatMessage.ParseConversationJson(Text("dsv32", input));
        string gold = Text("dsv32", output);
        if (gold.EndsWith('\n')) // test_output.txt ends with a newline the encoder does not write
            gold = gold[..^1];

        string prompt = ChatTemplate.Create(ChatTemplateKind.DeepSeekV32).Render(c.Messages, new ChatRenderOptions { Thinking = true, Tools = c.Tools });

        Assert.Equal(gold, prompt);
    }

    [Fact]
    public void V32_round_trips_its_tool_calls()
    {
        ChatConversation c = ChatMessage.ParseConversationJson(Text("dsv32", "test_input.json"));
        string prompt = ChatTemplate.Create(ChatTemplateKind.DeepSeekV32).Render(c.Messages, new ChatRenderOptions { Thinking = true, Tools = c.Tools });
        ToolCall[] sent = c.Messages.Where(m => m.ToolCalls is not null).SelectMany(m => m.ToolCalls!).ToArray();

        ToolCallResult parsed = ToolCallParser.Parse(prompt, ToolCallFormat.DsmlV32);

        Assert.Equal(sent.Length, parsed.ToolCalls.Count);
        for (int i = 0; i < sent.Length; i++)
        {
            Assert.Equal(sent[i].Name, parsed.ToolCalls[i].Name);
            Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(sent[i].Arguments).RootElement, JsonDocument.Parse(parsed.ToolCalls[i].Arguments).RootElement));
        }
        // the real calls left the text; the example in the tools prompt (not valid markup) stays as text
        Assert.DoesNotContain("invoke name=\"get_", parsed.Content, StringComparison.Ordinal);
        Assert.Contains("invoke name=\"$FUNCTION_NAME\"", parsed.Content, StringComparison.Ordinal);
    }

    public static TheoryData<int> V4Cases()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < s_v4.GetProperty("cases").GetArrayLength(); i++)
            data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(V4Cases))]
    public void V4_renders_as_the_encoder_with_every_option(int index)
    {
        JsonElement c = s_v4.GetProperty("cases")[index];
        JsonElement o = c.GetProperty("options");
        var options = new ChatRenderOptions
        {
            Thinking = o.GetProperty("thinking_mode").GetString() == "thinking",
            DropThinking = !o.TryGetProperty("drop_thinking", out JsonElement d) || d.GetBoolean(),
            ReasoningEffort = o.TryGetProperty("reasoning_effort", out JsonElement e) ? ChatRenderOptions.ParseReasoningEffort(e.GetString()) : null,
        };
        IReadOnlyList<ChatMessage> messages = ChatMessage.ParseJson(c.GetProperty("messages").GetRawText());

        Assert.Equal(c.GetProperty("rendered").GetString(), ChatTemplate.Create(ChatTemplateKind.DeepSeekV4).Render(messages, options));
    }

    [Fact]
    public void V4_fixture_covers_the_branches()
    {
        string[] rendered = s_v4.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("rendered").GetString()!).ToArray();
        Assert.Contains(rendered, r => r.StartsWith("<｜begin▁of▁sentence｜>Reasoning Effort: Absolute maximum", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.Contains("string=\"false\">1e-05<", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.Contains("<｜DSML｜parameter name=\"arguments\" string=\"true\">2**10 (not json)<", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.Contains("## Response Format:", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.Contains("<｜latest_reminder｜>", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.Contains("<｜title｜>", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.Contains("<tool_result>1024</tool_result>\n\n<tool_result>{\"temp\": 18}</tool_result>", StringComparison.Ordinal) is false
                                       && r.Contains("<tool_result>{\"temp\": 18}</tool_result>\n\n<tool_result>1024</tool_result>", StringComparison.Ordinal));
    }

    public static TheoryData<int> V4Replies()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < s_v4.GetProperty("replies").GetArrayLength(); i++)
            data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(V4Replies))]
    public void V4_parses_replies_as_the_encoder_and_streams_them_in_any_pieces(int index)
    {
        JsonElement r = s_v4.GetProperty("replies")[index];
        string text = r.GetProperty("text").GetString()!;
        if (r.TryGetProperty("error", out _))
        {
            Assert.Throws<InvalidDataException>(() => DsmlParser.ParseCompletion(text, true, ToolCallFormat.DsmlV4));
            return;
        }
        JsonElement want = r.GetProperty("parsed");
        DsmlCompletion got = DsmlParser.ParseCompletion(text, true, ToolCallFormat.DsmlV4);
        Assert.Equal(want.GetProperty("reasoning_content").GetString(), got.Reasoning);
        Assert.Equal(want.GetProperty("content").GetString(), got.Content);
        JsonElement[] calls = want.GetProperty("tool_calls").EnumerateArray().ToArray();
        Assert.Equal(calls.Length, got.ToolCalls.Count);
        for (int i = 0; i < calls.Length; i++)
        {
            Assert.Equal(calls[i].GetProperty("function").GetProperty("name").GetString(), got.ToolCalls[i].Name);
            Assert.Equal(calls[i].GetProperty("function").GetProperty("arguments").GetString(), got.ToolCalls[i].Arguments);
        }

        // streamed: reasoning then tool-call parsing, split at every position, gives the same pieces
        string body = text[..^"<｜end▁of▁sentence｜>".Length];
        for (int split = 0; split <= body.Length; split++)
        {
            var reasoning = new ReasoningParser(startsInReasoning: true);
            var tools = new StreamingToolCallParser(ToolCallFormat.DsmlV4);
            var content = new StringBuilder();
            var thought = new StringBuilder();
            var found = new List<ToolCall>();
            foreach (string piece in (string[])[body[..split], body[split..], ""])
            {
                ReasoningResult rr = piece.Length > 0 ? reasoning.Push(piece) : reasoning.Flush();
                thought.Append(rr.Reasoning);
                ToolCallResult tr = tools.Push(rr.Content);
                content.Append(tr.Content);
                found.AddRange(tr.ToolCalls);
            }
            ToolCallResult end = tools.Flush();
            content.Append(end.Content);
            found.AddRange(end.ToolCalls);
            Assert.Equal(got.Reasoning, thought.ToString());
            Assert.Equal(got.Content, content.ToString());
            Assert.Equal(got.ToolCalls.Select(t => (t.Name, t.Arguments)), found.Select(t => (t.Name, t.Arguments)));
        }
    }

    [Fact]
    public void Request_tools_go_to_the_first_system_message_or_a_new_one()
    {
        IReadOnlyList<ToolDefinition> tools = ToolDefinition.ParseJson("""[{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}]""");
        ChatTemplate v4 = ChatTemplate.Create(ChatTemplateKind.DeepSeekV4);
        ChatMessage[] bare = [ChatMessage.User("Hi")];
        ChatMessage[] explicitSystem = [new ChatMessage("system", "") { Tools = tools }, ChatMessage.User("Hi")];
        Assert.Equal(v4.Render(explicitSystem, new ChatRenderOptions()), v4.Render(bare, new ChatRenderOptions { Tools = tools }));
        ChatMessage[] withSystem = [ChatMessage.System("Be brief."), ChatMessage.User("Hi")];
        string prompt = v4.Render(withSystem, new ChatRenderOptions { Tools = tools });
        Assert.StartsWith("<｜begin▁of▁sentence｜>Be brief.\n\n## Tools\n", prompt, StringComparison.Ordinal);
        Assert.Contains("{\"name\": \"f\", \"description\": \"d\", \"parameters\": {\"type\": \"object\"}}", prompt, StringComparison.Ordinal);
    }

    [Fact]
    public void V4_chat_mode_closes_think_and_thinking_opens_it()
    {
        ChatTemplate v4 = ChatTemplate.Create(ChatTemplateKind.DeepSeekV4);
        ChatMessage[] m = [ChatMessage.User("Hi")];
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>", v4.Render(m, new ChatRenderOptions()));
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜></think>", v4.Render(m, new ChatRenderOptions { Thinking = false }));
        ChatTemplate v32 = ChatTemplate.Create(ChatTemplateKind.DeepSeekV32);
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜></think>", v32.Render(m, new ChatRenderOptions()));
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>", v32.Render(m, new ChatRenderOptions { Thinking = true }));
    }

    [Fact]
    public void Bad_tool_call_arguments_name_the_message_and_field()
    {
        ChatMessage[] m = [ChatMessage.User("Hi"), ChatMessage.Assistant("", [new ToolCall("c", "f", "{not json")]), ChatMessage.Tool("x", "c")];
        var e = Assert.Throws<ArgumentException>(() => ChatTemplate.Create(ChatTemplateKind.DeepSeekV32).Render(m, new ChatRenderOptions()));
        Assert.Contains("message 1: tool_calls[0].function.arguments", e.Message, StringComparison.Ordinal);
        // V4 wraps text that is not JSON, as its encoder does, but a JSON value that is not an object is refused
        Assert.Contains("string=\"true\">{not json<", ChatTemplate.Create(ChatTemplateKind.DeepSeekV4).Render(m, new ChatRenderOptions()), StringComparison.Ordinal);
        ChatMessage[] array = [ChatMessage.User("Hi"), ChatMessage.Assistant("", [new ToolCall("c", "f", "[1, 2]")])];
        Assert.Contains("expected a JSON object", Assert.Throws<ArgumentException>(() => ChatTemplate.Create(ChatTemplateKind.DeepSeekV4).Render(array, new ChatRenderOptions())).Message, StringComparison.Ordinal);
        // a V3.2 tool result with no call before it
        ChatMessage[] orphan = [ChatMessage.User("Hi"), ChatMessage.Tool("x")];
        Assert.Contains("message 1 (role 'tool')", Assert.Throws<ArgumentException>(() => ChatTemplate.Create(ChatTemplateKind.DeepSeekV32).Render(orphan, new ChatRenderOptions())).Message, StringComparison.Ordinal);
        ChatMessage[] task = [new ChatMessage("user", "Hi") { Task = "summarize" }];
        Assert.Contains("task 'summarize'", Assert.Throws<ArgumentException>(() => ChatTemplate.Create(ChatTemplateKind.DeepSeekV4).Render(task, new ChatRenderOptions())).Message, StringComparison.Ordinal);
    }

    private const string Call = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"false\">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";

    [Theory]
    [InlineData("no think end" + Call, "</think>")]
    [InlineData("r</think>x" + "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke nam=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>", "tool call 0: expected ' name=")]
    [InlineData("r</think>x" + "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"maybe\">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>", "string=\"maybe\"")]
    [InlineData("r</think>x" + "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"false\">{oops</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>", "is not JSON")]
    [InlineData("r</think>x" + "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">1</｜DSML｜parameter>\n<｜DSML｜parameter name=\"a\" string=\"true\">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>", "given twice")]
    [InlineData("r</think>x" + "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n", "not closed")]
    [InlineData("r</think>x" + Call + "tail", "unexpected text after")]
    [InlineData("r</think>x<think>y", "'<think>' in the content")]
    public void Malformed_dsml_is_an_error_naming_the_part(string reply, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => DsmlParser.ParseCompletion(reply, thinking: true, ToolCallFormat.DsmlV4));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Streaming_keeps_malformed_calls_as_content()
    {
        string bad = "See:\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"false\">{oops</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
        ToolCallResult r = ToolCallParser.Parse(bad, ToolCallFormat.DsmlV4);
        Assert.Empty(r.ToolCalls);
        Assert.StartsWith("See:<｜DSML｜invoke name=\"f\">", r.Content, StringComparison.Ordinal);
        // the V3.2 block name is not V4's
        Assert.Empty(ToolCallParser.Parse("x" + Call, ToolCallFormat.DsmlV32).ToolCalls);
        ToolCall ok = Assert.Single(ToolCallParser.Parse("x" + Call, ToolCallFormat.DsmlV4).ToolCalls);
        Assert.Equal("{\"a\": 1}", ok.Arguments);
    }

    [Theory]
    [InlineData("1e-05", "1e-05")]
    [InlineData("0.0001", "0.0001")]
    [InlineData("1e16", "1e+16")]
    [InlineData("1234567890123456.0", "1234567890123456.0")]
    [InlineData("2.50", "2.5")]
    [InlineData("1E2", "100.0")]
    [InlineData("-0.0", "-0.0")]
    [InlineData("-0", "0")]
    [InlineData("123456789012345678901234567890", "123456789012345678901234567890")]
    [InlineData("0.1", "0.1")]
    [InlineData("1.5e300", "1.5e+300")]
    [InlineData("-2.5e-7", "-2.5e-07")]
    public void Numbers_are_written_as_python_writes_them(string json, string python)
    {
        Assert.Equal(python, PythonJson.Number(json));
    }

    [Fact]
    public void Floats_are_written_as_json_dumps_writes_them()
    {
        JsonElement[] floats = s_v4.GetProperty("floats").EnumerateArray().ToArray();
        Assert.True(floats.Length > 300);
        foreach (JsonElement f in floats)
            Assert.Equal(f[1].GetString(), PythonJson.Number(f[0].GetString()!));
    }

    [Fact]
    public void Strings_escape_as_json_dumps_without_ascii()
    {
        Assert.Equal("\"a\\\"b\\\\c\\n\\t\\u0001深度 🌍\"", PythonJson.Quote("a\"b\\c\n\t\u0001深度 🌍"));
        using JsonDocument doc = JsonDocument.Parse("{\"b\": [1, 2.0, {\"c\": null}], \"a\": true}");
        Assert.Equal("{\"b\": [1, 2.0, {\"c\": null}], \"a\": true}", PythonJson.Dumps(doc.RootElement));
    }
}
