// DeepSeek-V3.1's chat template against its Jinja: Data/v31_cases.json, rendered by Jinja2 with transformers'
// settings by Data/make_v31_cases.py from Data/deepseek_v31_chat_template.jinja (the V3.1 release's template), with
// thinking on, off and unset; and recognition of that template in a tokenizer_config.json.
using System.Text.Json;

namespace SharpSeek.Tokenizer.Tests;

public sealed class ChatTemplateV31Tests
{
    private static readonly JsonElement s_cases = Read("v31_cases.json");

    private static JsonElement Read(string name)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Data", name)));
        return doc.RootElement.Clone();
    }

    public static TheoryData<int> Cases()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < s_cases.GetProperty("cases").GetArrayLength(); i++)
            data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_byte_identical_to_the_released_jinja(int index)
    {
        JsonElement c = s_cases.GetProperty("cases")[index];
        IReadOnlyList<ChatMessage> messages = ChatMessage.ParseJson(c.GetProperty("messages").GetRawText());
        JsonElement t = c.GetProperty("thinking");
        var options = new ChatRenderOptions
        {
            AddGenerationPrompt = c.GetProperty("add_generation_prompt").GetBoolean(),
            Thinking = t.ValueKind == JsonValueKind.Null ? null : t.GetBoolean(),
        };
        ChatTemplate template = ChatTemplate.Create(ChatTemplateKind.DeepSeekV31);

        if (c.TryGetProperty("error", out _))
        {
            Assert.Throws<ArgumentException>(() => template.Render(messages, options));
            return;
        }
        string want = c.GetProperty("rendered").GetString()!;
        string got = template.Render(messages, options);
        Assert.Equal(want, got);
        Assert.Equal(Oracle.Encode(Oracle.V3, want), TestData.V3.Encode(got));
    }

    [Fact]
    public void Fixture_covers_both_modes_tools_and_dropped_reasoning()
    {
        JsonElement[] cases = s_cases.GetProperty("cases").EnumerateArray().ToArray();
        string[] rendered = cases.Where(c => c.TryGetProperty("rendered", out _)).Select(c => c.GetProperty("rendered").GetString()!).ToArray();
        Assert.Contains(rendered, r => r.EndsWith("<｜Assistant｜><think>", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.EndsWith("<｜Assistant｜></think>", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.Contains("<｜tool▁call▁end｜><｜tool▁call▁begin｜>", StringComparison.Ordinal)); // calls chained
        Assert.Contains(rendered, r => r.Contains("<｜tool▁output▁end｜><｜tool▁output▁begin｜>", StringComparison.Ordinal));
        Assert.Contains(rendered, r => r.Contains("<｜Assistant｜><think>Autumn moonlight", StringComparison.Ordinal)); // prefix
        Assert.DoesNotContain(rendered, r => r.Contains("The user greets me.", StringComparison.Ordinal)); // reasoning dropped
        Assert.Contains(cases, c => c.TryGetProperty("error", out _));
        Assert.Contains(cases, c => c.GetProperty("thinking").ValueKind == JsonValueKind.Null);
    }

    [Fact]
    public void Recognises_the_released_template_in_tokenizer_config()
    {
        string jinja = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "deepseek_v31_chat_template.jinja"));
        string dir = Directory.CreateTempSubdirectory("sharpseek-v31-").FullName;
        try
        {
            string path = Path.Combine(dir, "tokenizer_config.json");
            File.WriteAllText(path, JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["bos_token"] = "<｜begin▁of▁sentence｜>",
                ["chat_template"] = jinja,
            }));
            ChatTemplate template = ChatTemplate.FromConfig(TokenizerConfig.Load(path));
            Assert.Equal(ChatTemplateKind.DeepSeekV31, template.Kind);
            Assert.True(template.SupportsThinking);
            Assert.False(template.DefaultThinking);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        // the V3 and R1 templates are not taken for V3.1
        Assert.Equal(ChatTemplateKind.DeepSeekV3, ChatTemplate.FromConfig(TestData.V3.Config).Kind);
        Assert.Equal(ChatTemplateKind.DeepSeekV4, ChatTemplate.DetectKind(null, "deepseek_v4"));
        Assert.Equal(ChatTemplateKind.DeepSeekV32, ChatTemplate.DetectKind(null, "deepseek_v32"));
        Assert.Equal(ChatTemplateKind.DeepSeekV3, ChatTemplate.DetectKind(null, "deepseek_v3"));
        // llama.cpp's Jinja versions of the encoders (models/templates): both have the V3.1-style toggle, told apart by DSML's block
        Assert.Equal(ChatTemplateKind.DeepSeekV32, ChatTemplate.DetectKind("{% if not thinking is defined %}{% set dsml_token = '｜DSML｜' %}<' + dsml_token + 'function_calls>"));
        Assert.Equal(ChatTemplateKind.DeepSeekV4, ChatTemplate.DetectKind("{% if not thinking is defined %}{% set dsml_token = '｜DSML｜' %}<' + dsml_token + 'tool_calls>"));
        Assert.Equal(ChatTemplateKind.DeepSeekV31, ChatTemplate.DetectKind("{% if not thinking is defined %}{{'<｜Assistant｜><think></think>'}}"));
    }

    [Fact]
    public void Thinking_toggle_is_refused_where_the_template_has_none()
    {
        ChatMessage[] messages = [ChatMessage.User("Hi")];
        var on = new ChatRenderOptions { Thinking = true };
        var e = Assert.Throws<ArgumentException>(() => ChatTemplate.Create(ChatTemplateKind.DeepSeekV3).Render(messages, on));
        Assert.Contains("thinking", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ChatTemplate.Create(ChatTemplateKind.DeepSeekR1).Render(messages, on with { Thinking = false }));
        // unset: V3 and R1 render as before
        Assert.EndsWith("<｜Assistant｜><think>\n", ChatTemplate.Create(ChatTemplateKind.DeepSeekR1).Render(messages, new ChatRenderOptions()), StringComparison.Ordinal);
    }

    [Fact]
    public void Reply_starts_in_reasoning_only_when_the_prompt_opened_think()
    {
        ChatTemplate v31 = ChatTemplate.Create(ChatTemplateKind.DeepSeekV31);
        Assert.True(v31.StartsInReasoning(new ChatRenderOptions { Thinking = true }));
        Assert.False(v31.StartsInReasoning(new ChatRenderOptions { Thinking = false }));
        Assert.False(v31.StartsInReasoning(new ChatRenderOptions()));
        Assert.True(ChatTemplate.Create(ChatTemplateKind.DeepSeekV4).StartsInReasoning(new ChatRenderOptions()));
        Assert.True(ChatTemplate.Create(ChatTemplateKind.DeepSeekR1).StartsInReasoning(new ChatRenderOptions()));
        Assert.False(ChatTemplate.Create(ChatTemplateKind.DeepSeekV3).StartsInReasoning(new ChatRenderOptions()));
        Assert.Equal(ToolCallFormat.DeepSeekV31, v31.ToolCallFormat);
    }

    [Theory]
    [InlineData("v3", ChatTemplateKind.DeepSeekV3)]
    [InlineData("r1", ChatTemplateKind.DeepSeekR1)]
    [InlineData("v3.1", ChatTemplateKind.DeepSeekV31)]
    [InlineData("V3.1-Terminus", ChatTemplateKind.DeepSeekV31)]
    [InlineData("v3.2", ChatTemplateKind.DeepSeekV32)]
    [InlineData("v3.2-exp", ChatTemplateKind.DeepSeekV32)]
    [InlineData("v4", ChatTemplateKind.DeepSeekV4)]
    public void Template_names_parse_and_round_trip(string name, ChatTemplateKind kind)
    {
        Assert.Equal(kind, ChatTemplate.ParseName(name));
        Assert.Equal(kind, ChatTemplate.ParseName(ChatTemplate.NameOf(kind)));
    }

    [Fact]
    public void Bad_names_and_switches_name_the_option()
    {
        Assert.Contains("--template", Assert.Throws<ArgumentException>(() => ChatTemplate.ParseName("v5")).Message, StringComparison.Ordinal);
        Assert.Contains("--think", Assert.Throws<ArgumentException>(() => ChatRenderOptions.ParseThinkSwitch("maybe")).Message, StringComparison.Ordinal);
        Assert.True(ChatRenderOptions.ParseThinkSwitch("on"));
        Assert.False(ChatRenderOptions.ParseThinkSwitch("OFF"));
    }

    [Theory]
    [InlineData("{\"type\": \"enabled\"}", true)]
    [InlineData("{\"type\": \"disabled\"}", false)]
    [InlineData("\"enabled\"", true)]
    [InlineData("false", false)]
    [InlineData("null", null)]
    public void Api_thinking_field_parses(string json, bool? expected)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        Assert.Equal(expected, ChatRenderOptions.ParseApiThinking(doc.RootElement));
    }

    [Theory]
    [InlineData("{\"type\": \"auto\"}", "thinking.type")]
    [InlineData("{\"kind\": \"enabled\"}", "thinking")]
    [InlineData("3", "thinking.type")]
    public void Bad_api_thinking_field_names_the_field(string json, string field)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        Assert.StartsWith(field, Assert.Throws<ArgumentException>(() => ChatRenderOptions.ParseApiThinking(doc.RootElement)).Message, StringComparison.Ordinal);
        Assert.Contains("reasoning_effort", Assert.Throws<ArgumentException>(() => ChatRenderOptions.ParseReasoningEffort("extreme")).Message, StringComparison.Ordinal);
        Assert.Equal(ReasoningEffort.Max, ChatRenderOptions.ParseReasoningEffort("ultra"));
        Assert.Equal(ReasoningEffort.High, ChatRenderOptions.ParseReasoningEffort("medium"));
    }
}
