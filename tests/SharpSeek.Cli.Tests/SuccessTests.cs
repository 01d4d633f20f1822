// Every verb's success path on the tiny fixtures and the shipped model: exit 0 and the expected output.
using SharpSeek.Formats.Safetensors;

namespace SharpSeek.Cli.Tests;

public sealed class SuccessTests : IClassFixture<ScratchDirectory>
{
    private readonly ScratchDirectory _scratch;

    public SuccessTests(ScratchDirectory scratch) => _scratch = scratch;

    private static CliResult Ok(CliResult r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return r;
    }

    [Fact]
    public void LogitsWritesTheLogits()
    {
        string output = _scratch.File("logits.safetensors");
        CliResult r = Ok(Cli.Run("logits", "--model", Cli.Tiny, "--ids", "1,2,3", "--out", output));
        Assert.Contains("wrote logits [3, 1024]", r.Err, StringComparison.Ordinal);
        using var f = SafetensorsFile.Open(output);
        Assert.Equal([3L, 1024L], f.Tensors["logits"].Shape);
    }

    [Fact]
    public void GenerateIdsIsGreedyAndRepeatable()
    {
        string[] args = ["generate", "--model", Cli.Tiny, "--prompt-ids", "1,2,3", "--max-tokens", "6", "--temperature", "0", "--output-ids", "--ignore-eos"];
        CliResult a = Ok(Cli.Run(args)), b = Ok(Cli.Run(args));
        Assert.Equal(6, a.Out.Trim().Split(',').Length);
        Assert.Equal(a.Out, b.Out);
    }

    // the sampling a checkpoint recommends (generation_config.json) is the default: do_sample false makes it greedy
    // whatever the seed; --temperature still overrides it
    [Fact]
    public void SamplingDefaultsComeFromTheModelsGenerationConfig()
    {
        string dir = System.IO.Path.Combine(_scratch.Path, "greedy-tiny");
        Directory.CreateDirectory(dir);
        foreach (string f in new[] { "config.json", "model.safetensors" })
            File.Copy(System.IO.Path.Combine(Cli.Tiny, f), System.IO.Path.Combine(dir, f));
        string[] Args(params string[] more) => ["generate", "--model", dir, "--prompt-ids", "1,2,3", "--max-tokens", "12", "--output-ids", "--ignore-eos", .. more];
        string greedy = Ok(Cli.Run(Args("--temperature", "0"))).Out;
        File.WriteAllText(System.IO.Path.Combine(dir, "generation_config.json"), """{"do_sample": false, "temperature": 0.6, "top_p": 0.95}""");
        Assert.Equal(greedy, Ok(Cli.Run(Args("--seed", "1"))).Out);
        Assert.Equal(greedy, Ok(Cli.Run(Args("--seed", "2"))).Out);
        File.WriteAllText(System.IO.Path.Combine(dir, "generation_config.json"), """{"do_sample": true, "temperature": 5.0, "top_p": 1.0}""");
        Assert.NotEqual(Ok(Cli.Run(Args("--seed", "1"))).Out, Ok(Cli.Run(Args("--seed", "2"))).Out);
        Assert.Equal(greedy, Ok(Cli.Run(Args("--seed", "3", "--temperature", "0"))).Out);
    }

    [Fact]
    public void GenerateTextWithTheDefaultModel()
    {
        CliResult r = Ok(Cli.Run("generate", "--prompt", "It was a fine morning, and", "--max-tokens", "8", "--temperature", "0", "--stats"));
        Assert.True(r.Out.Trim().Length > 0, r.ToString());
        Assert.Contains("generated in", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void ChatAnswersFromStdin()
    {
        CliResult r = Ok(Cli.Run(["chat", "--max-tokens", "4", "--temperature", "0", "--color", "never"], [], stdin: "Hello\n/reset\n/exit\n"));
        Assert.Contains("(conversation cleared)", r.Out, StringComparison.Ordinal);
        Assert.Contains("chat with sharpseek-r1", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void InspectPrintsJson()
    {
        CliResult r = Ok(Cli.Run("inspect", "--model", Cli.Tiny, "--json"));
        Assert.Contains("\"model_type\": \"deepseek_v3\"", r.Out, StringComparison.Ordinal);
        r = Ok(Cli.Run("inspect", "--model", Cli.Tiny, "--cost", "--tokens", "1B"));
        Assert.Contains("training cost of deepseek_v3", r.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void EvalScoresAText()
    {
        string text = _scratch.File("eval.txt", "It was a fine morning, and the sun was shining on the green hills of the country.");
        CliResult r = Ok(Cli.Run("eval", "--text-file", text, "--window", "16", "--threads", "1", "--json"));
        Assert.Contains("\"bits_per_byte\"", r.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void ConvertThenGgufInfoThenGenerateFromTheGguf()
    {
        string gguf = _scratch.File("tiny.gguf");
        Ok(Cli.Run("convert", "--model", Cli.Tiny, "--out", gguf, "--type", "f32"));
        CliResult info = Ok(Cli.Run("gguf-info", "--file", gguf));
        Assert.Contains("general.architecture", info.Out, StringComparison.Ordinal);
        string[] fromDir = ["generate", "--model", Cli.Tiny, "--prompt-ids", "1,2,3", "--max-tokens", "5", "--temperature", "0", "--output-ids"];
        string[] fromGguf = [.. fromDir];
        fromGguf[2] = gguf;
        Assert.Equal(Ok(Cli.Run(fromDir)).Out, Ok(Cli.Run(fromGguf)).Out);
    }

    [Fact]
    public void ExportWritesACheckpoint()
    {
        string dir = Path.Combine(_scratch.Path, "export");
        Ok(Cli.Run("export", "--model", Cli.Tiny, "--out", dir, "--type", "f32"));
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(dir, "config.json")));
    }

    // export --average writes the element-wise mean of the checkpoints' weights (checked on every tensor)
    [Fact]
    public void ExportAveragesCheckpoints()
    {
        string a = Path.Combine(_scratch.Path, "avg-a"), b = Path.Combine(_scratch.Path, "avg-b"), dir = Path.Combine(_scratch.Path, "avg");
        Ok(Cli.Run("synth", "--config", Path.Combine(Cli.Tiny, "config.json"), "--out", a, "--seed", "3"));
        Ok(Cli.Run("synth", "--config", Path.Combine(Cli.Tiny, "config.json"), "--out", b, "--seed", "4"));
        CliResult r = Ok(Cli.Run("export", "--model", a, "--average", b, "--out", dir, "--type", "f32"));
        Assert.Contains("averaged 2 checkpoints", r.Err, StringComparison.Ordinal);
        SharpSeek.Training.ModelParameters pa = SharpSeek.Training.ModelParameters.Load(a), pb = SharpSeek.Training.ModelParameters.Load(b),
                                            mean = SharpSeek.Training.ModelParameters.Load(dir);
        double maxDiff = 0;
        for (int i = 0; i < mean.Trainable.Count; i++)
        {
            for (int j = 0; j < mean.Trainable[i].Length; j++)
                maxDiff = Math.Max(maxDiff, Math.Abs(mean.Trainable[i].Values[j] - (pa.Trainable[i].Values[j] + pb.Trainable[i].Values[j]) / 2));
        }
        Assert.True(maxDiff < 1e-6, $"max abs diff {maxDiff}");
        Assert.NotEqual(pa.Trainable[0].Values[0], mean.Trainable[0].Values[0]);
        CliResult bad = Cli.Run("export", "--model", a, "--average", Path.Combine(_scratch.Path, "nowhere"), "--out", Path.Combine(_scratch.Path, "x"));
        Assert.NotEqual(0, bad.Code);
        Assert.Contains("nowhere", bad.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void SynthWritesARandomCheckpoint()
    {
        string dir = Path.Combine(_scratch.Path, "synth");
        Ok(Cli.Run("synth", "--config", Path.Combine(Cli.Tiny, "config.json"), "--out", dir));
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
    }

    [Fact]
    public void BenchRunsOnATinyModel()
    {
        CliResult r = Ok(Cli.Run("bench", "--model", Cli.Tiny, "--prompt-tokens", "4", "--gen-tokens", "2", "--runs", "1", "--threads", "1",
                                 "--skip-roofline", "--json"));
        Assert.Contains("\"decode_tokens_per_s\"", r.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void TokenizeAndTemplateSucceed()
    {
        // both write UTF-8 bytes to the process's stdout (not Console.Out): the exit code is checked here, the
        // output by ../shared/tools/check-cli.sh tokenizer
        Ok(Cli.Run("tokenize", "--tokenizer", Cli.MiniModel, "--text", "Hello"));
        string messages = _scratch.File("chat.json", """[{"role": "user", "content": "Hi"}]""");
        Ok(Cli.Run("template", "--model", Cli.MiniModel, "--messages-file", messages, "--add-generation-prompt"));
        foreach (string kind in (string[])["v3.1", "v3.2", "v4"])
        {
            foreach (string think in (string[])["on", "off"])
                Ok(Cli.Run("template", "--model", Cli.MiniModel, "--messages-file", messages, "--add-generation-prompt", "--template", kind, "--think", think));
        }
        string request = _scratch.File("request.json", """{"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}""");
        Ok(Cli.Run("template", "--model", Cli.MiniModel, "--messages-file", request, "--template", "v4", "--ids"));
    }

    [Fact]
    public void GenerateChatRendersTheThinkingPrompt()
    {
        // --output-ids: the prompt is not printed, but the generated ids follow from it; greedy on the shipped model,
        // thinking on and off give different prompts and so (almost surely) different continuations
        string[] Args(string think) => ["generate", "--prompt", "Why is the sky blue?", "--chat", "--template", "v3.1", "--think", think,
                                        "--max-tokens", "6", "--temperature", "0", "--output-ids", "--threads", "1"];
        CliResult on = Ok(Cli.Run(Args("on")));
        CliResult off = Ok(Cli.Run(Args("off")));
        Assert.Matches(@"^\d+(,\d+)*\n$", on.Out);
        Assert.NotEqual(on.Out, off.Out);
    }

    [Fact]
    public void GradsWritesLossAndGradients()
    {
        string ids = _scratch.File("ids.safetensors");
        var w = new SafetensorsWriter();
        w.AddI64("input_ids", [1, 5], [1, 2, 3, 4, 5]);
        w.Save(ids);
        string output = _scratch.File("grads.safetensors");
        CliResult r = Ok(Cli.Run("grads", "--model", Cli.Tiny, "--ids", ids, "--out", output, "--threads", "1"));
        Assert.StartsWith("loss ", r.Err, StringComparison.Ordinal);
        using var f = SafetensorsFile.Open(output);
        Assert.Equal([1L], f.Tensors["loss"].Shape);
    }
}
