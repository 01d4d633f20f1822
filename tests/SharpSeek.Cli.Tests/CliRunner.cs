// Runs the sharpseek CLI in-process with stdout, stderr and stdin captured (Console is process-wide, so the tests of
// this assembly run one at a time), and a scratch directory per test class.
using System.CommandLine;
using SharpSeek.Tests;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace SharpSeek.Cli.Tests;

internal sealed record CliResult(int Code, string Out, string Err)
{
    public override string ToString() => $"exit {Code}\nstdout: {Out}\nstderr: {Err}";
}

internal static class Cli
{
    public static string MiniModel { get; } = Fixtures.ShippedModel("sharpseek-mini");

    public static string Tiny { get; } = Fixtures.Hf("v3-tiny");

    public static CliResult Run(params string[] args) => Run(args, [], stdin: null);

    public static CliResult Run(string[] args, Command[] extra, string? stdin = null, string? debug = null)
    {
        TextWriter oldOut = Console.Out, oldErr = Console.Error;
        TextReader oldIn = Console.In;
        string? oldDebug = Environment.GetEnvironmentVariable("SHARPSEEK_DEBUG");
        var output = new StringWriter();
        var error = new StringWriter();
        Console.SetOut(output);
        Console.SetError(error);
        if (stdin is not null)
            Console.SetIn(new StringReader(stdin));
        Environment.SetEnvironmentVariable("SHARPSEEK_DEBUG", debug);
        try
        {
            int code = Program.Run(args, extra);
            return new CliResult(code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
            Console.SetIn(oldIn);
            Environment.SetEnvironmentVariable("SHARPSEEK_DEBUG", oldDebug);
        }
    }
}

/// <summary>A temporary directory deleted with the test class.</summary>
public sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sharpseek-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name, string? text = null)
    {
        string p = System.IO.Path.Combine(Path, name);
        if (text is not null)
            System.IO.File.WriteAllText(p, text);
        return p;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
