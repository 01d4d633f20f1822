// sharpseek command-line entry point: one file per verb under Commands/, shared options in CliOptions.cs, exit codes
// in CliErrors.cs (0 ok, 1 user error, 2 usage error, 70 internal error, 130 interrupted).
using System.CommandLine;
using System.CommandLine.Parsing;

namespace SharpSeek.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args);

    /// <summary>Parses and runs a command line; <paramref name="extra"/> adds verbs (tests).</summary>
    internal static int Run(string[] args, params Command[] extra)
    {
        Option<bool> verbose = CliOptions.Verbose();
        var root = new RootCommand("SharpSeek: DeepSeek V2/V3-family models in C#") { verbose };
        foreach (Command c in Commands().Concat(extra))
            root.Subcommands.Add(c);
        ParseResult pr = root.Parse(args);
        bool trace = CliErrors.DebugFromEnvironment() || pr.GetValue(verbose);
        if (pr.Errors.Count > 0)
        {
            foreach (ParseError e in pr.Errors)
                Console.Error.WriteLine("error: " + e.Message);
            Command c = pr.CommandResult.Command;
            Console.Error.WriteLine($"see 'sharpseek{(c == root ? "" : " " + c.Name)} --help'");
            return ExitCodes.Usage;
        }
        return CliErrors.Run(() => pr.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }), trace);
    }

    private static IEnumerable<Command> Commands()
    {
        // One line per verb; keep alphabetical to avoid merge conflicts.
        return [
            BenchCommand.Create(),
            BenchTrainCommand.Create(),
            ChatCommand.Create(),
            ConvertCommand.Create(),
            EvalCommand.Create(),
            EvalTasksCommand.Create(),
            ExportCommand.Create(),
            GenerateCommand.Create(),
            GgufInfoCommand.Create(),
            GradsCommand.Create(),
            GrpoCommand.Create(),
            InspectCommand.Create(),
            LogitsCommand.Create(),
            ServeCommand.Create(),
            SftCommand.Create(),
            SynthCommand.Create(),
            TasksCommand.Create(),
            TemplateCommand.Create(),
            TokenizeCommand.Create(),
            TrainCommand.Create(),
        ];
    }
}
