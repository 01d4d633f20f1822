// The verbs that take DeepSeek-V4 models, run as a user would: inspect on the released config, generate on the
// deepseek4 fixture (llama.cpp's greedy continuation with --indexer-precision f32), convert from the released format
// and back through generate, bench; and their errors.
using SharpSeek.Tests;

namespace SharpSeek.Cli.Tests;

public sealed class V4CommandTests : IClassFixture<ScratchDirectory>
{
    private static readonly string Dir = Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4");
    private readonly ScratchDirectory _scratch;

    public V4CommandTests(ScratchDirectory scratch) => _scratch = scratch;

    private static CliResult Ok(CliResult r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return r;
    }

    [Fact]
    public void Inspect_reports_the_v4_flash_parameters_and_cache()
    {
        CliResult r = Ok(Cli.Run("inspect", "--model", Path.Combine(Fixtures.Root, "configs", "deepseek-v4-flash.json")));
        Assert.Contains("284,332,240,471 total", r.Out, StringComparison.Ordinal);
        Assert.Contains("21 compressed sparse", r.Out, StringComparison.Ordinal);
        Assert.Contains("DeepSeek-V3's MLA: 70,272", r.Out, StringComparison.Ordinal);
        CliResult j = Ok(Cli.Run("inspect", "--model", Path.Combine(Fixtures.Root, "configs", "deepseek-v4-flash.json"), "--json"));
        Assert.Contains("\"parameters_active\": 13270101591", j.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_continues_the_prompt_as_llama_cpp_does()
    {
        string prompt = File.ReadAllText(Path.Combine(Dir, "prompt.txt")).Trim();
        string[] ids = File.ReadAllText(Path.Combine(Dir, "ids.txt")).Trim().Split(',');
        CliResult r = Ok(Cli.Run("generate", "--model", Path.Combine(Dir, "model.gguf"), "--prompt-ids", prompt, "--temperature", "0",
                                 "--max-tokens", "32", "--output-ids", "--ignore-eos", "--indexer-precision", "f32", "--threads", "2"));
        Assert.Equal(string.Join(",", ids.Skip(prompt.Split(',').Length)), r.Out.Trim());
    }

    [Fact]
    public void Convert_from_the_released_format_writes_a_file_generate_runs()
    {
        string gguf = _scratch.File("v4.gguf");
        CliResult c = Ok(Cli.Run("convert", "--model", Path.Combine(Dir, "hf"), "--type", "mxfp4", "--out", gguf));
        Assert.Contains("deepseek4 Mxfp4", c.Err, StringComparison.Ordinal);
        string[] args = ["--prompt-ids", "5,17,42", "--temperature", "0", "--max-tokens", "4", "--output-ids", "--ignore-eos"];
        CliResult a = Ok(Cli.Run(["generate", "--model", gguf, .. args]));
        Assert.Equal(4, a.Out.Trim().Split(',').Length);
        CliResult b = Ok(Cli.Run(["generate", "--model", Path.Combine(Dir, "hf"), .. args]));
        Assert.Equal(4, b.Out.Trim().Split(',').Length);
    }

    [Fact]
    public void Bench_measures_prefill_and_decode()
    {
        CliResult r = Ok(Cli.Run("bench", "--model", Path.Combine(Dir, "model.gguf"), "--prompt-tokens", "40", "--gen-tokens", "4", "--runs", "1", "--json"));
        Assert.Contains("\"decode_tokens_per_s\"", r.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--prompt", "hi", "no tokenizer")]
    [InlineData("--prompt-ids", "5,600", "vocabulary")]
    [InlineData("--speculative", "", "speculative")]
    public void Generate_errors_name_the_problem(string option, string value, string named)
    {
        string[] args = option == "--speculative"
            ? ["generate", "--model", Path.Combine(Dir, "model.gguf"), "--prompt-ids", "5", "--speculative"]
            : ["generate", "--model", Path.Combine(Dir, "model.gguf"), option, value];
        CliResult r = Cli.Run(args);
        Assert.True(r.Code == 1, r.ToString());
        Assert.Contains(named, r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Logits_match_llama_cpp_in_f32()
    {
        string ids = File.ReadAllText(Path.Combine(Dir, "ids.txt")).Trim();
        string output = _scratch.File("v4-logits.safetensors");
        Ok(Cli.Run("logits", "--model", Path.Combine(Dir, "model.gguf"), "--ids", ids, "--out", output, "--indexer-precision", "f32"));
        int T = ids.Split(',').Length;
        using var mine = Formats.Safetensors.Checkpoint.FromFiles(_scratch.Path, [output], null);
        using var theirs = Formats.Safetensors.Checkpoint.FromFiles(Dir, [Path.Combine(Dir, "reference.safetensors")], null);
        Numerics.AssertClose(theirs.ReadFloats("logits", T, 512), mine.ReadFloats("logits", T, 512), 1e-3, "sharpseek logits vs llama.cpp");
    }

    [Theory]
    [InlineData("serve")]
    [InlineData("eval")]
    public void Verbs_without_v4_support_say_so(string verb)
    {
        string[] args = verb == "eval"
            ? ["eval", "--model", Path.Combine(Dir, "model.gguf"), "--text-file", Path.Combine(Dir, "README.md")]
            : ["serve", "--model", Path.Combine(Dir, "model.gguf")];
        CliResult r = Cli.Run(args);
        Assert.True(r.Code == 1, r.ToString());
        Assert.Contains("DeepSeek-V4", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Chat_needs_a_tokenizer()
    {
        CliResult r = Cli.Run(["chat", "--model", Path.Combine(Dir, "model.gguf")], [], stdin: "hi\n");
        Assert.True(r.Code == 1, r.ToString());
        Assert.Contains("no tokenizer", r.Err, StringComparison.Ordinal);
    }
}
