// sharpseek command-line entry point.
using System.CommandLine;

namespace SharpSeek.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("SharpSeek: DeepSeek V2/V3-family models in C#");
        return root.Parse(args).Invoke();
    }
}
