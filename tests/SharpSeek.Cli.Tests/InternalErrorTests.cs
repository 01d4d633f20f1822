// Internal errors (bugs) exit 70 with "internal error: <message>"; the stack trace only with --verbose or
// SHARPSEEK_DEBUG=1. The exception classification the exit codes follow.
using System.CommandLine;

namespace SharpSeek.Cli.Tests;

public sealed class InternalErrorTests
{
    // a verb whose body fails the way a bug in a kernel does
    private static Command Throwing(Exception e)
    {
        var cmd = new Command("throw-for-test");
        cmd.SetAction(_ => ThrowIt(e));
        return cmd;
    }

    private static int ThrowIt(Exception e) => throw e;

    [Fact]
    public void BugExits70WithOneLine()
    {
        CliResult r = Cli.Run(["throw-for-test"], [Throwing(new ArgumentException("MatVec: x has 3 (need 4)"))]);
        Assert.True(r.Code == 70, r.ToString());
        Assert.Equal("internal error: MatVec: x has 3 (need 4)", r.Err.TrimEnd());
    }

    [Fact]
    public void VerbosePrintsTheStackTrace()
    {
        CliResult r = Cli.Run(["throw-for-test", "--verbose"], [Throwing(new InvalidOperationException("state is broken"))]);
        Assert.True(r.Code == 70, r.ToString());
        Assert.StartsWith("internal error: state is broken", r.Err, StringComparison.Ordinal);
        Assert.Contains("System.InvalidOperationException: state is broken", r.Err, StringComparison.Ordinal);
        Assert.Contains(nameof(ThrowIt), r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void DebugVariablePrintsTheStackTrace()
    {
        CliResult r = Cli.Run(["throw-for-test"], [Throwing(new NullReferenceException("oops"))], debug: "1");
        Assert.True(r.Code == 70, r.ToString());
        Assert.Contains("System.NullReferenceException: oops", r.Err, StringComparison.Ordinal);
        Assert.Contains(nameof(ThrowIt), r.Err, StringComparison.Ordinal);

        r = Cli.Run(["throw-for-test"], [Throwing(new NullReferenceException("oops"))], debug: "0");
        Assert.Equal("internal error: oops", r.Err.TrimEnd());
    }

    [Fact]
    public void RunnerReportsAThrowingBody()
    {
        var err = new StringWriter();
        TextWriter old = Console.Error;
        Console.SetError(err);
        try
        {
            Assert.Equal(70, CliErrors.Run(() => throw new IndexOutOfRangeException("row 9 of 8"), verbose: false));
            Assert.Equal(0, CliErrors.Run(() => 0, verbose: true));
        }
        finally
        {
            Console.SetError(old);
        }
        Assert.Equal("internal error: row 9 of 8", err.ToString().TrimEnd());
    }

    public static TheoryData<Exception, int> Classified() => new()
    {
        { new UserInputException("--threads must be >= 1"), 1 },
        { new InvalidDataException("x.gguf: bad magic"), 1 },
        { new FileNotFoundException("config.json not found"), 1 },
        { new DirectoryNotFoundException("no such directory"), 1 },
        { new EndOfStreamException("truncated"), 1 },
        { new IOException("disk full"), 1 },
        { new UnauthorizedAccessException("permission denied"), 1 },
        { new NotSupportedException("general.architecture is 'llama'"), 1 },
        { new UsageException("give exactly one of --prompt-ids and --prompt"), 2 },
        { new ArgumentException("length mismatch"), 70 },
        { new ArgumentOutOfRangeException("row"), 70 },
        { new InvalidOperationException("already generating"), 70 },
        { new FormatException("bad format string"), 70 },
        { new NullReferenceException(), 70 },
        { new OperationCanceledException(), 130 },
    };

    [Theory]
    [MemberData(nameof(Classified))]
    public void ExceptionsMapToExitCodes(Exception e, int code) => Assert.Equal(code, CliErrors.ExitCode(e));

    [Fact]
    public void UserValueTurnsTheLibrarysArgumentCheckIntoAUserError()
    {
        var e = Assert.Throws<UserInputException>(() => CliErrors.UserValue<int>(() => throw new ArgumentException("--dtype 'q3' is not one of")));
        Assert.Equal("--dtype 'q3' is not one of", e.Message);
        Assert.Throws<InvalidOperationException>(() => CliErrors.UserValue<int>(() => throw new InvalidOperationException()));
    }
}
