// User errors exit 1 with one line "error: ..." on stderr: a bad option value names the option, a missing or
// malformed file names the file. Values are checked before the model is loaded where they can be.
using SharpSeek.Formats.Safetensors;

namespace SharpSeek.Cli.Tests;

public sealed class UserErrorTests : IClassFixture<ScratchDirectory>
{
    private readonly ScratchDirectory _scratch;

    public UserErrorTests(ScratchDirectory scratch) => _scratch = scratch;

    private static void AssertUserError(CliResult r, string named)
    {
        Assert.True(r.Code == 1, r.ToString());
        string[] lines = r.Err.TrimEnd('\n').Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(named, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BadValues() => new()
    {
        { "logits --model {tiny} --ids 1,x --out {out}", "--ids" },
        { "logits --model {tiny} --ids 1,2,99999 --out {out}", "--ids" },
        { "logits --model {tiny} --ids 1 --out {out} --dtype q3", "--dtype" },
        { "inspect --model {tiny} --context -1", "--context" },
        { "inspect --model {tiny} --cost --tokens lots", "--tokens" },
        { "inspect --model {tiny} --cost --tokens 1T --precision fp4", "--precision" },
        { "inspect --model {tiny} --cost --tokens 1T --utilization 2", "utilization" },
        { "generate --model {tiny} --prompt-ids 1 --cache-type f16", "--cache-type" },
        { "generate --model {tiny} --prompt-ids 1 --threads 0", "--threads" },
        { "generate --model {tiny} --prompt-ids 1 --top-k -1", "top-k" },
        { "generate --model {tiny} --prompt-ids 1 --max-tokens 0", "max tokens" },
        { "generate --model {tiny} --prompt-ids 1,2,5000 --output-ids", "--prompt-ids" },
        { "generate --model {tiny} --prompt-ids 1,,q", "--prompt-ids" },
        { "chat --model {tiny} --color pink", "--color" },
        { "eval --model {mini} --text-file {text} --window 1", "--window" },
        { "eval --model {mini} --text-file {text} --window 100000", "--window" },
        { "export --model {tiny} --out {out} --type q8_0", "--type" },
        { "export --model {tiny} --out {tiny}", "--out" },
        { "convert --model {tiny} --out {out} --type q3", "--type" },
        { "convert --model {tiny} --out {out} --to onnx", "--to" },
        { "bench --model {tiny} --runs 0", "--runs" },
        { "bench --model {tiny} --threads 0", "--threads" },
        { "template --model {mini} --messages-file {messages} --template v9", "--template" },
        { "template --model {mini} --messages-file {messages} --template v3.1 --think maybe", "--think" },
        { "template --model {mini} --messages-file {messages} --think on", "--think" }, // the V3 template has no toggle
        { "template --model {mini} --messages-file {messages} --template r1 --think off", "--think" },
        { "generate --model {mini} --prompt hi --chat --template v9", "--template" },
        { "generate --model {mini} --prompt hi --chat --think yes-please", "--think" },
        { "generate --model {mini} --prompt hi --chat --think on", "--think" },
        { "chat --model {mini} --think sometimes", "--think" },
        { "chat --model {mini} --template v3.3", "--template" },
        { "serve --model {mini} --port 0 --template v9", "--template" },
        { "serve --model {mini} --port 0 --think maybe", "--think" },
        { "serve --model {mini} --port 0 --think on", "--think" }, // the V3 template has no toggle
        { "serve --model {mini} --port 0 --template r1 --think off", "--think" },
        { "bench-train --config {tiny} --batch 0", "--batch" },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public void BadOptionValueExits1NamingTheOption(string line, string option)
    {
        AssertUserError(Cli.Run(Expand(line)), option);
    }

    public static TheoryData<string, string> BadFiles() => new()
    {
        { "logits --model {missing} --ids 1 --out {out}", "{missing}" },
        { "logits --model {badconfig} --ids 1 --out {out}", "{badconfig}" },
        { "generate --model {missing} --prompt-ids 1", "{missing}" },
        { "generate --model {garbage.gguf} --prompt-ids 1", "{garbage.gguf}" },
        { "generate --model {tiny} --prompt hello", "{tiny}" }, // no tokenizer.json
        { "chat --model {tiny}", "{tiny}" },
        { "inspect --model {badconfig}", "{badconfig}" },
        { "eval --model {mini} --text-file {missing}", "{missing}" },
        { "eval --model {mini} --text-file {empty}", "{empty}" },
        { "export --model {missing} --out {out}", "{missing}" },
        { "convert --model {missing} --out {out}", "{missing}" },
        { "convert --model {tiny} --out {out} --tokenizer {missing}", "{missing}" },
        { "gguf-info --file {garbage.gguf}", "{garbage.gguf}" },
        { "gguf-info --file {missing}", "{missing}" },
        { "synth --config {badconfig} --out {out}", "{badconfig}" },
        { "bench --model {missing}", "{missing}" },
        { "tokenize --tokenizer {missing} --text a", "{missing}" },
        { "tokenize --tokenizer {mini} --text-file {missing}", "{missing}" },
        { "template --model {missing} --messages-file {messages}", "{missing}" },
        { "template --model {mini} --messages-file {badjson}", "{badjson}" },
        { "template --model {mini} --messages-file {nocontent}", "no content" },
        { "template --model {mini} --messages-file {badargs} --template v3.2", "tool_calls[0].function.arguments" },
        { "template --model {mini} --messages-file {badtools} --template v4", "tools[0]" },
        { "grads --model {tiny} --ids {missing} --out {out}", "{missing}" },
        { "grads --model {tiny} --ids {bigids} --out {out}", "{bigids}" },
        { "train --config {missing}", "{missing}" },
        { "train --config {badjson}", "{badjson}" },
        { "bench-train --config {missing}", "{missing}" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void MissingOrMalformedFileExits1NamingTheFile(string line, string named)
    {
        AssertUserError(Cli.Run(Expand(line)), Expand([named])[0]);
    }

    [Fact]
    public void ChatReportsATurnLongerThanTheContextAndGoesOn()
    {
        string tooLong = string.Concat(Enumerable.Repeat("word ", 1500)); // the default model (sharpseek-r1) was trained on 704 tokens (generation_config max_length)
        CliResult r = Cli.Run(["chat", "--max-tokens", "2", "--temperature", "0", "--color", "never"], [], stdin: tooLong + "\nHello\n/exit\n");
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("error: the conversation has ", r.Err, StringComparison.Ordinal);
        Assert.Contains("the model's context is 704", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void VerboseAddsTheTraceToAUserError()
    {
        CliResult r = Cli.Run(Expand("gguf-info --file {garbage.gguf} --verbose"));
        Assert.True(r.Code == 1, r.ToString());
        Assert.StartsWith("error: ", r.Err, StringComparison.Ordinal);
        Assert.Contains("InvalidDataException", r.Err, StringComparison.Ordinal);
        Assert.Contains("   at ", r.Err, StringComparison.Ordinal);
    }

    private string[] Expand(string line) => Expand(line.Split(' '));

    private string[] Expand(string[] args) => args.Select(a => a
        .Replace("{tiny}", Cli.Tiny, StringComparison.Ordinal)
        .Replace("{mini}", Cli.MiniModel, StringComparison.Ordinal)
        .Replace("{out}", _scratch.File("out"), StringComparison.Ordinal)
        .Replace("{missing}", _scratch.File("no-such-file"), StringComparison.Ordinal)
        .Replace("{badconfig}", BadConfig(), StringComparison.Ordinal)
        .Replace("{garbage.gguf}", _scratch.File("garbage.gguf", "not a gguf file"), StringComparison.Ordinal)
        .Replace("{text}", _scratch.File("text.txt", "It was a fine morning, and the sun was up."), StringComparison.Ordinal)
        .Replace("{empty}", _scratch.File("empty.txt", "a"), StringComparison.Ordinal)
        .Replace("{messages}", _scratch.File("messages.json", """[{"role": "user", "content": "Hi"}]"""), StringComparison.Ordinal)
        .Replace("{nocontent}", _scratch.File("nocontent.json", """[{"role": "user", "content": null}]"""), StringComparison.Ordinal)
        .Replace("{badargs}", _scratch.File("badargs.json", """[{"role": "user", "content": "x"}, {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{bad"}}]}, {"role": "tool", "content": "r"}]"""), StringComparison.Ordinal)
        .Replace("{badtools}", _scratch.File("badtools.json", """{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}"""), StringComparison.Ordinal)
        .Replace("{badjson}", _scratch.File("bad.json", "[{"), StringComparison.Ordinal)
        .Replace("{bigids}", BigIds(), StringComparison.Ordinal)).ToArray();

    // a model directory whose config.json is not JSON
    private string BadConfig()
    {
        string dir = Path.Combine(_scratch.Path, "badconfig");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), "{ \"model_type\": ");
        return dir;
    }

    // input ids with one outside v3-tiny's vocabulary of 1024
    private string BigIds()
    {
        string path = _scratch.File("bigids.safetensors");
        var w = new SafetensorsWriter();
        w.AddI64("input_ids", [1, 4], [1, 2, 5000, 3]);
        w.Save(path);
        return path;
    }
}
