// Usage errors exit 2: a missing required option, an unknown option, an unparsable value, options that do not go
// together or none of a required choice; each error is one "error: ..." line plus where to find help.
namespace SharpSeek.Cli.Tests;

public sealed class UsageErrorTests
{
    [Theory]
    [InlineData("logits", "--model")]
    [InlineData("logits --model m --out o", "--ids")]
    [InlineData("inspect", "--model")]
    [InlineData("eval", "--text-file")]
    [InlineData("export --model m", "--out")]
    [InlineData("convert --out o.gguf", "--model")]
    [InlineData("gguf-info", "--file")]
    [InlineData("synth --out o", "--config")]
    [InlineData("bench", "--model")]
    [InlineData("tokenize --text x", "--tokenizer")]
    [InlineData("template --model m", "--messages-file")]
    [InlineData("grads --model m --ids i", "--out")]
    [InlineData("train", "--config")]
    [InlineData("bench-train", "--config")]
    public void MissingRequiredOptionExits2(string line, string option)
    {
        CliResult r = Cli.Run(line.Split(' '));
        Assert.True(r.Code == 2, r.ToString());
        Assert.Contains($"error: Option '{option}' is required.", r.Err, StringComparison.Ordinal);
        Assert.Contains($"see 'sharpseek {line.Split(' ')[0]} --help'", r.Err, StringComparison.Ordinal);
        Assert.Equal("", r.Out);
    }

    [Theory]
    [InlineData("generate --prompt-ids 1 --bogus", "--bogus")]
    [InlineData("chat --no-such-option", "--no-such-option")]
    [InlineData("no-such-verb", "no-such-verb")]
    [InlineData("generate --prompt-ids 1 --max-tokens abc", "--max-tokens")]
    [InlineData("logits --model m --ids 1 --out o --attention sideways", "sideways")]
    [InlineData("synth --config c --out o --seed -1", "--seed")]
    public void UnknownOptionOrUnparsableValueExits2(string line, string named)
    {
        CliResult r = Cli.Run(line.Split(' '));
        Assert.True(r.Code == 2, r.ToString());
        Assert.StartsWith("error: ", r.Err, StringComparison.Ordinal);
        Assert.Contains(named, r.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("generate", "give exactly one of --prompt-ids and --prompt")]
    [InlineData("generate --prompt-ids 1 --prompt x", "give exactly one of --prompt-ids and --prompt")]
    [InlineData("generate --prompt-ids 1 --chat", "--chat needs --prompt")]
    [InlineData("generate --prompt x --system s", "--system needs --chat")]
    [InlineData("generate --prompt x --think on", "--template and --think need --chat")]
    [InlineData("generate --prompt x --template v3.1", "--template and --think need --chat")]
    [InlineData("generate --prompt-ids 1 --speculative-tokens 3", "--speculative-tokens needs --speculative")]
    [InlineData("tokenize --tokenizer t", "give --text-file or --text")]
    [InlineData("tokenize --tokenizer t --text a --text-file b", "give --text-file or --text, not both")]
    public void OptionsThatDoNotGoTogetherExit2(string line, string message)
    {
        CliResult r = Cli.Run(line.Split(' '));
        Assert.True(r.Code == 2, r.ToString());
        Assert.Equal("error: " + message, r.Err.TrimEnd());
    }

    [Fact]
    public void CostWithoutTokensExits2()
    {
        CliResult r = Cli.Run("inspect", "--model", Cli.Tiny, "--cost");
        Assert.True(r.Code == 2, r.ToString());
        Assert.Contains("--cost needs --tokens", r.Err, StringComparison.Ordinal);
    }
}
