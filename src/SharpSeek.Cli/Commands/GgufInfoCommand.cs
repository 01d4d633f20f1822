// sharpseek gguf-info: a GGUF file's metadata and tensor table.
using System.CommandLine;
using SharpSeek.Formats.Gguf;

namespace SharpSeek.Cli;

internal static class GgufInfoCommand
{
    public static Command Create()
    {
        var file = new Option<string>("--file") { Description = "A .gguf file", Required = true };
        var tensors = new Option<bool>("--tensors") { Description = "List every tensor" };
        var cmd = new Command("gguf-info", "Print a GGUF file's metadata and tensor summary") { file, tensors };
        cmd.SetAction(pr =>
        {
            using GgufFile f = GgufFile.Open(pr.GetValue(file)!);
            Console.WriteLine($"GGUF v{f.Version}, {f.Keys.Count} keys, {f.Tensors.Count} tensors, alignment {f.Alignment}, data at {f.DataOffset}");
            foreach (string key in f.Keys)
                Console.WriteLine($"  {key,-56} {f.Metadata[key]}");
            var byType = f.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key);
            foreach (var g in byType)
                Console.WriteLine($"  {GgmlTypes.Name(g.Key),-8} {g.Count(),6} tensors {g.Sum(t => t.ByteLength) / 1e6,12:0.0} MB");
            if (pr.GetValue(tensors))
            {
                foreach (GgufTensorInfo t in f.Tensors)
                    Console.WriteLine($"  {t.Name,-40} {GgmlTypes.Name(t.Type),-6} {t.DimsText}");
            }
            return 0;
        });
        return cmd;
    }
}
