// sharpseek synth: a random-weight checkpoint (bf16, Hugging Face layout) of any DeepSeek shape.
using System.CommandLine;
using SharpSeek.Model;

namespace SharpSeek.Cli;

internal static class SynthCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "config.json describing the shape", Required = true };
        var output = new Option<string>("--out") { Description = "Output directory", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 1 };
        var cmd = new Command("synth", "Write a random-weight checkpoint (bf16, Hugging Face layout) of any DeepSeek shape") { config, output, seed };
        cmd.SetAction(pr =>
        {
            ModelConfig c = ModelConfig.Load(pr.GetValue(config)!);
            ModelStats s = ModelStats.Compute(c);
            Console.Error.WriteLine($"writing {s.ParametersTotal + s.MtpParameters:N0} parameters to {pr.GetValue(output)}");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            SyntheticModel.Write(c, pr.GetValue(output)!, pr.GetValue(seed));
            Console.Error.WriteLine($"done in {sw.Elapsed.TotalSeconds:0.0} s");
            return 0;
        });
        return cmd;
    }
}
