// Output helpers the verbs share.
using System.Text;

namespace SharpSeek.Cli;

internal static class CliOutput
{
    // stdout as UTF-8 bytes whatever the console encoding, with nothing added
    public static void WriteUtf8(string s)
    {
        using Stream stdout = Console.OpenStandardOutput();
        stdout.Write(Encoding.UTF8.GetBytes(s));
    }
}
