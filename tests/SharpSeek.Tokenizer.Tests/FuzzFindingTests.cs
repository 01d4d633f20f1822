// Inputs AFL++ found (bench/fuzz/afl.sh, target chat-template) that made TokenizerConfig.Load throw
// InvalidOperationException: System.Text.Json checks a string only when it is read, so invalid UTF-8 in a value or an
// unpaired surrogate escape in a property name surfaced as a crash. Each is now refused with the file named; the same
// holds for chat requests (messages files and the server's bodies).
namespace SharpSeek.Tokenizer.Tests;

public class FuzzFindingTests
{
    [Theory]
    [InlineData("tokenizer_config-invalid-utf8.json")]    // "<\xef\xbd\x9c\x8fnd": a UTF-8 sequence cut short
    [InlineData("tokenizer_config-lone-surrogate.json")]  // "add_bos\ud801_token": a high surrogate with no low one
    public void TokenizerConfigWithBadTextIsRefusedNamingTheFile(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Data", "fuzz", name);
        var e = Assert.Throws<InvalidDataException>(() => TokenizerConfig.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AToolWithBadTextDeepInItsParametersIsRefusedAtParseTime()
    {
        // found by AFL++ after 539,645 executions of the messages target: "\ud800" as a property name inside a tool's
        // JSON parsed fine and threw InvalidOperationException later, when the V3.2 template wrote the tool out
        string path = Path.Combine(AppContext.BaseDirectory, "Data", "fuzz", "messages-tool-parameter-surrogate.json");
        var e = Assert.Throws<InvalidDataException>(() => ChatMessage.LoadConversationJson(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""[{"role": "user", "content": "hi \ud800"}]""")]
    [InlineData("""[{"role": "user\udc00", "content": "hi"}]""")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f\ud800"}}]}""")]
    public void MessagesWithUnpairedSurrogatesAreRefusedNamingTheSource(string json)
    {
        var e = Assert.Throws<InvalidDataException>(() => ChatMessage.ParseConversationJson(json, "request.json"));
        Assert.Contains("request.json", e.Message, StringComparison.Ordinal);
    }
}
