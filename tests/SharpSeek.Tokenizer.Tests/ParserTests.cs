// ReasoningParser and ToolCallParser, whole and streamed in every possible split of the input.
namespace SharpSeek.Tokenizer.Tests;

public sealed class ParserTests
{
    [Theory]
    [InlineData(true, "reasoning here\n</think>\n\nThe answer.", "reasoning here\n", "\n\nThe answer.")]
    [InlineData(true, "<think>\nr\n</think>a", "\nr\n", "a")]
    [InlineData(true, "still thinking", "still thinking", "")]
    [InlineData(true, "</think>", "", "")]
    [InlineData(true, "a</think>b</think>c", "a", "b</think>c")]
    [InlineData(false, "<think>r</think>answer", "r", "answer")]
    [InlineData(false, "no reasoning <think>at all</think>", null, "no reasoning <think>at all</think>")]
    [InlineData(false, "", null, "")]
    [InlineData(false, "<thin", null, "<thin")]
    [InlineData(true, "ends with </thi", "ends with </thi", "")]
    public void Reasoning_is_split_from_content(bool startsInReasoning, string text, string? reasoning, string content)
    {
        Assert.Equal(new ReasoningResult(reasoning, content), ReasoningParser.Parse(text, startsInReasoning));

        // every split into two pushes, and one character at a time, give the same text
        for (int cut = 0; cut <= text.Length; cut++)
        {
            var p = new ReasoningParser(startsInReasoning);
            ReasoningResult[] parts = [p.Push(text[..cut]), p.Push(text[cut..]), p.Flush()];
            Assert.Equal(reasoning ?? "", string.Concat(parts.Select(r => r.Reasoning)));
            Assert.Equal(content, string.Concat(parts.Select(r => r.Content)));
        }
        var q = new ReasoningParser(startsInReasoning);
        ReasoningResult[] chars = [.. text.Select(ch => q.Push(ch.ToString())), q.Flush()];
        Assert.Equal(reasoning ?? "", string.Concat(chars.Select(r => r.Reasoning)));
        Assert.Equal(content, string.Concat(chars.Select(r => r.Content)));
    }

    [Fact]
    public void Streaming_reasoning_holds_back_only_a_possible_tag()
    {
        var p = new ReasoningParser();
        Assert.True(p.InReasoning);
        Assert.Equal(new ReasoningResult("Let me see", ""), p.Push("Let me see</th"));
        Assert.Equal(new ReasoningResult("", "Four"), p.Push("ink>Four"));
        Assert.False(p.InReasoning);
        Assert.Equal(new ReasoningResult("", " more"), p.Push(" more"));
    }

    private const string V3Output =
        "Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n"
        + "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";

    private const string V31Output =
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜>"
        + "<｜tool▁call▁begin｜>search<｜tool▁sep｜>{\"q\": \"x\\ny\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>";

    [Fact]
    public void V3_tool_calls_are_parsed()
    {
        ToolCallResult r = ToolCallParser.Parse(V3Output);
        Assert.Equal("Let me check.", r.Content);
        Assert.Equal([new ToolCall(null, "get_weather", "{\"city\": \"Paris\"}"), new ToolCall(null, "get_time", "{}")], r.ToolCalls);
    }

    [Fact]
    public void V31_tool_calls_are_parsed()
    {
        ToolCallResult r = ToolCallParser.Parse(V31Output);
        Assert.Equal("", r.Content);
        Assert.Equal([new ToolCall(null, "get_weather", "{\"city\": \"Paris\"}"), new ToolCall(null, "search", "{\"q\": \"x\\ny\"}")], r.ToolCalls);
    }

    [Fact]
    public void Template_rendering_of_calls_parses_back_to_the_calls()
    {
        var calls = new[] { new ToolCall(null, "f", "{\"a\": 1}"), new ToolCall(null, "g", "[1,\n2]") };
        string rendered = ChatTemplate.Create(ChatTemplateKind.DeepSeekR1)
            .Render([ChatMessage.User("x"), ChatMessage.Assistant(null, calls)], addGenerationPrompt: false);
        string output = rendered[rendered.IndexOf(ToolCallParser.CallsBegin, StringComparison.Ordinal)..];
        Assert.Equal(calls, ToolCallParser.Parse(output).ToolCalls);
    }

    [Theory]
    [InlineData(V3Output)]
    [InlineData(V31Output)]
    [InlineData("plain text with < and <｜ and no calls")]
    public void Streamed_tool_calls_match_the_whole_parse_for_every_split(string text)
    {
        ToolCallResult whole = ToolCallParser.Parse(text);
        for (int cut = 0; cut <= text.Length; cut++)
        {
            var p = new StreamingToolCallParser();
            ToolCallResult[] parts = [p.Push(text[..cut]), p.Push(text[cut..]), p.Flush()];
            Assert.Equal(whole.Content, string.Concat(parts.Select(r => r.Content)));
            Assert.Equal(whole.ToolCalls, parts.SelectMany(r => r.ToolCalls));
        }
    }

    [Fact]
    public void Streaming_returns_each_call_when_it_closes()
    {
        var p = new StreamingToolCallParser();
        ToolCallResult a = p.Push("Hi<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{}");
        Assert.Equal("Hi", a.Content);
        Assert.Empty(a.ToolCalls);
        Assert.True(p.InToolCalls);
        ToolCallResult b = p.Push("\n```<｜tool▁call▁end｜>");
        Assert.Equal([new ToolCall(null, "f", "{}")], b.ToolCalls);
        ToolCallResult c = p.Push("<｜tool▁calls▁end｜>");
        Assert.False(p.InToolCalls);
        Assert.Empty(c.ToolCalls);
    }

    [Fact]
    public void Cut_off_or_malformed_calls_stay_in_the_content()
    {
        const string CutOff = "x<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"a\":";
        ToolCallResult r = ToolCallParser.Parse(CutOff);
        Assert.Empty(r.ToolCalls);
        Assert.Equal("x<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"a\":", r.Content);

        ToolCallResult m = ToolCallParser.Parse("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>no separator<｜tool▁call▁end｜><｜tool▁calls▁end｜>after");
        Assert.Empty(m.ToolCalls);
        Assert.Equal("<｜tool▁call▁begin｜>no separator<｜tool▁call▁end｜>after", m.Content);
    }
}
