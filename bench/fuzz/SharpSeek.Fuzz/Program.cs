// SharpSeek.Fuzz: the AFL++ harness (SharpFuzz) for SharpSeek's untrusted inputs; see Targets and bench/fuzz/afl.sh.
//   SharpSeek.Fuzz seeds DIR [TEMPLATE...]   writes seed inputs of every target under DIR/TARGET/ (TEMPLATE:
//                                           tokenizer_config.json or .jinja files, the chat-template seeds)
//   SharpSeek.Fuzz afl TARGET               runs under afl-fuzz (persistent mode, input on stdin)
//   SharpSeek.Fuzz replay TARGET FILE...    runs each file once: "accepted", "refused" or the exception (exit 1)
namespace SharpSeek.Fuzz;

public static class Program
{
    public static int Main(string[] args)
    {
        switch (args)
        {
            case ["seeds", string dir, .. string[] templates]:
                Targets.WriteSeeds(dir, templates);
                Console.WriteLine($"seeds written under {dir}: {string.Join(", ", Targets.Files.Keys)}");
                return 0;
            case ["afl", string target]:
                if (!Targets.Files.ContainsKey(target))
                    break;
                SharpFuzz.Fuzzer.Run(stream =>
                {
                    using var ms = new MemoryStream();
                    stream.CopyTo(ms);
                    Targets.Run(target, ms.ToArray());
                });
                return 0;
            case ["replay", string target, .. string[] files] when files.Length > 0:
                int failed = 0;
                foreach (string f in files)
                {
                    try
                    {
                        Console.WriteLine($"{f}: {(Targets.Run(target, File.ReadAllBytes(f)) ? "accepted" : "refused")}");
                    }
                    catch (Exception e)
                    {
                        failed++;
                        Console.WriteLine($"{f}: FINDING {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                    }
                }
                return failed == 0 ? 0 : 1;
        }
        Console.Error.WriteLine($"usage: SharpSeek.Fuzz seeds DIR [TEMPLATE...] | afl TARGET | replay TARGET FILE...  (targets: {string.Join(", ", Targets.Files.Keys)})");
        return 2;
    }
}
