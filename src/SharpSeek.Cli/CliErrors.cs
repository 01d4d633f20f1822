// Turns expected failures (bad files, bad arguments) into one clear line on stderr and exit code 1.
namespace SharpSeek.Cli;

internal static class CliErrors
{
    /// <summary>Runs a verb's body; known errors print "error: ..." without a stack trace.</summary>
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException
                                      or ArgumentException or NotSupportedException or IOException or FormatException
                                      or UnauthorizedAccessException or InvalidOperationException or OperationCanceledException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 1;
        }
    }

    /// <summary>Parses "5,17,42" (spaces and brackets allowed) into ids.</summary>
    public static int[] ParseIds(string text, string option)
    {
        string[] parts = text.Trim().Trim('[', ']').Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], out ids[i]) || ids[i] < 0)
                throw new ArgumentException($"{option}: '{parts[i]}' is not a token id");
        }
        if (ids.Length == 0)
            throw new ArgumentException($"{option}: no token ids given");
        return ids;
    }
}
