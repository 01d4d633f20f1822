// ChatTemplate against the Jinja it replaces: tests/fixtures/tokenizer/chat_cases.json (rendered by transformers)
// and Data/chat_branches.json (every branch of the V3 and R1 templates, rendered by Jinja2 with transformers'
// settings by Data/make_chat_branches.py).
using System.Text.Json;

namespace SharpSeek.Tokenizer.Tests;

public sealed class ChatTemplateTests
{
    private static readonly JsonElement s_branches = ReadBranches();

    private static JsonElement ReadBranches()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Data", "chat_branches.json");
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.Clone();
    }

    public static TheoryData<int> FixtureCases()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < TestData.ReadJson("tokenizer", "chat_cases.json").GetProperty("cases").GetArrayLength(); i++)
            data.Add(i);
        return data;
    }

    public static TheoryData<int> BranchCases()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < s_branches.GetProperty("cases").GetArrayLength(); i++)
            data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(FixtureCases))]
    public void Renders_and_encodes_the_transformers_fixture(int index)
    {
        JsonElement c = TestData.ReadJson("tokenizer", "chat_cases.json").GetProperty("cases")[index];
        IReadOnlyList<ChatMessage> messages = ChatMessage.ParseJson(c.GetProperty("messages").GetRawText());
        ChatTemplate template = ChatTemplate.FromConfig(TestData.V3.Config);

        string rendered = template.Render(messages, c.GetProperty("add_generation_prompt").GetBoolean());

        Assert.Equal(ChatTemplateKind.DeepSeekV3, template.Kind);
        Assert.Equal(c.GetProperty("rendered").GetString(), rendered);
        Assert.Equal(TestData.Ints(c.GetProperty("ids")), TestData.V3.Encode(rendered));
    }

    [Theory]
    [MemberData(nameof(BranchCases))]
    public void Renders_every_branch_as_the_jinja_does(int index)
    {
        JsonElement c = s_branches.GetProperty("cases")[index];
        ChatTemplateKind kind = c.GetProperty("template").GetString() == "r1" ? ChatTemplateKind.DeepSeekR1 : ChatTemplateKind.DeepSeekV3;
        IReadOnlyList<ChatMessage> messages = ChatMessage.ParseJson(c.GetProperty("messages").GetRawText());
        bool agp = c.GetProperty("add_generation_prompt").GetBoolean();
        ChatTemplate template = ChatTemplate.Create(kind);

        if (c.TryGetProperty("error", out _))
        {
            Assert.Throws<ArgumentException>(() => template.Render(messages, agp));
            return;
        }
        string want = c.GetProperty("rendered").GetString()!;
        string got = template.Render(messages, agp);
        Assert.Equal(want, got);
        Assert.Equal(Oracle.Encode(Oracle.V3, want), TestData.V3.Encode(got));
    }

    [Fact]
    public void Branch_fixture_covers_both_templates_and_the_quirks()
    {
        JsonElement[] cases = s_branches.GetProperty("cases").EnumerateArray().ToArray();
        Assert.Equal(2, cases.Select(c => c.GetProperty("template").GetString()).Distinct().Count());
        string[] rendered = cases.Where(c => c.TryGetProperty("rendered", out _)).Select(c => c.GetProperty("rendered").GetString()!).ToArray();
        Assert.Contains(rendered, r => r.Contains("```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>\n<｜tool▁output▁begin｜>", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.Contains("?\n<｜tool▁call▁begin｜>", StringComparison.Ordinal)); // flag never reset
        Assert.Contains(rendered, r => r.EndsWith("<｜Assistant｜><think>\n", StringComparison.Ordinal));
        Assert.Contains(cases, c => c.TryGetProperty("error", out _));
    }

    [Fact]
    public void R1_generation_prompt_opens_a_think_block_and_history_loses_reasoning()
    {
        var messages = new[]
        {
            ChatMessage.User("2+2?"),
            ChatMessage.Assistant("<think>\nadd\n</think>\n\n4"),
            ChatMessage.User("3+3?"),
        };
        string r1 = ChatTemplate.Create(ChatTemplateKind.DeepSeekR1).Render(messages, addGenerationPrompt: true);
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜><think>\n", r1);
        string v3 = ChatTemplate.Create(ChatTemplateKind.DeepSeekV3).Render(messages, addGenerationPrompt: true);
        Assert.Contains("<think>\nadd\n</think>", v3, StringComparison.Ordinal);
    }

    [Fact]
    public void Kind_is_recognised_from_the_template_text()
    {
        Assert.Equal(ChatTemplateKind.DeepSeekV3, ChatTemplate.DetectKind(TestData.V3.Config!.ChatTemplate));
        Assert.Equal(ChatTemplateKind.DeepSeekR1, ChatTemplate.DetectKind(s_branches.GetProperty("r1_template").GetString()));
        Assert.Equal(ChatTemplateKind.DeepSeekV3, ChatTemplate.DetectKind(null));

        var r1Config = new TokenizerConfig { BosToken = "<s>", ChatTemplate = s_branches.GetProperty("r1_template").GetString() };
        ChatTemplate fromConfig = ChatTemplate.FromConfig(r1Config);
        Assert.Equal(ChatTemplateKind.DeepSeekR1, fromConfig.Kind);
        Assert.Equal("<s>", fromConfig.BosToken);
        Assert.Equal(ChatTemplateKind.DeepSeekV3, ChatTemplate.FromConfig(r1Config, ChatTemplateKind.DeepSeekV3).Kind);
    }

    [Fact]
    public void Messages_json_is_read_with_tool_calls_and_content_parts()
    {
        const string Json = """
            {"messages": [
              {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
              {"role": "assistant", "tool_calls": [{"id": "x", "type": "function",
                 "function": {"name": "f", "arguments": {"k": [1, 2]}}}]},
              {"role": "tool", "content": "ok", "tool_call_id": "x"},
              {"role": "assistant", "content": "done", "reasoning_content": "why"}
            ]}
            """;
        IReadOnlyList<ChatMessage> m = ChatMessage.ParseJson(Json);
        Assert.Equal("ab", m[0].Content);
        Assert.Null(m[1].Content);
        Assert.Equal(new ToolCall("x", "f", """{"k": [1, 2]}"""), m[1].ToolCalls![0]);
        Assert.Equal("x", m[2].ToolCallId);
        Assert.Equal("why", m[3].ReasoningContent);
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("{}", "expected a JSON array")]
    [InlineData("""[{"content": "x"}]""", "message 0: missing string 'role'")]
    [InlineData("""[{"role": "user", "content": 5}]""", "message 0: 'content' must be")]
    [InlineData("""[{"role": "assistant", "tool_calls": [{"type": "function"}]}]""", "tool_calls[0]: missing object 'function'")]
    public void Malformed_messages_json_is_reported(string json, string message)
    {
        var e = Assert.Throws<InvalidDataException>(() => ChatMessage.ParseJson(json, "m.json"));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("m.json", e.Message, StringComparison.Ordinal);
    }
}
