// sharpseek command-line entry point: each verb group lives in its own *Commands.cs file.
using System.CommandLine;

namespace SharpSeek.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("SharpSeek: DeepSeek V2/V3-family models in C#");
        foreach (Command c in CommandGroups())
            root.Subcommands.Add(c);
        return root.Parse(args).Invoke();
    }

    private static IEnumerable<Command> CommandGroups()
    {
        // One line per group; keep alphabetical to avoid merge conflicts.
        return [
            .. CoreCommands.Create(),
            .. EvalCommands.Create(),
            .. ExportCommands.Create(),
            .. GgufCommands.Create(),
            .. InferenceCommands.Create(),
            .. PerfCommands.Create(),
            .. TokenizerCommands.Create(),
            .. TrainingCommands.Create(),
        ];
    }
}
