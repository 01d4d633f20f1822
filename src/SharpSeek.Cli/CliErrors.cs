// Exit codes, and the one place where an exception becomes one: the user's mistakes (a bad option value, a missing or
// malformed file) print one line "error: ..." and exit 1; usage errors (unknown or missing options, options that do
// not go together) exit 2; anything else is a bug: "internal error: ...", exit 70 (sysexits EX_SOFTWARE), with the
// stack trace under --verbose or SHARPSEEK_DEBUG=1.
namespace SharpSeek.Cli;

internal static class ExitCodes
{
    public const int Ok = 0;
    public const int UserError = 1;
    public const int Usage = 2;
    public const int Internal = 70;
    public const int Interrupted = 130; // 128 + SIGINT, as shells report Ctrl+C
}

/// <summary>A mistake in what the user gave: an option value, an input text or id; "error: ...", exit code 1.</summary>
internal sealed class UserInputException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Options that do not go together, or none given of a required choice; "error: ...", exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

internal static class CliErrors
{
    /// <summary>Runs a command body; an exception becomes its exit code and message on stderr.</summary>
    public static int Run(Func<int> body, bool verbose)
    {
        try
        {
            return body();
        }
        catch (Exception e)
        {
            return Report(e, verbose);
        }
    }

    /// <summary>The exit code of an exception that ends a command.</summary>
    /// <remarks>
    /// User errors are what the library throws for a bad file or model the user named (InvalidDataException,
    /// the IOException family: FileNotFound, DirectoryNotFound, EndOfStream, disk full; UnauthorizedAccessException;
    /// NotSupportedException for a model or file feature SharpSeek does not run) and what the CLI throws for a bad
    /// option value (UserInputException). ArgumentException, InvalidOperationException, FormatException and the rest
    /// are bugs: the CLI validates option values before they reach the library, or converts the library's
    /// ArgumentException to a UserInputException where the argument is the user's value (<see cref="UserValue"/>).
    /// </remarks>
    public static int ExitCode(Exception e) => e switch
    {
        UsageException => ExitCodes.Usage,
        UserInputException or InvalidDataException or IOException or UnauthorizedAccessException or NotSupportedException => ExitCodes.UserError,
        OperationCanceledException => ExitCodes.Interrupted,
        _ => ExitCodes.Internal,
    };

    public static int Report(Exception e, bool verbose)
    {
        int code = ExitCode(e);
        Console.Error.WriteLine(code switch
        {
            ExitCodes.Internal => "internal error: " + e.Message,
            ExitCodes.Interrupted => "interrupted",
            _ => "error: " + e.Message,
        });
        if (verbose)
            Console.Error.WriteLine(e.ToString());
        return code;
    }

    /// <summary>Calls a library function whose arguments are the user's values (an option parsed or validated by the
    /// library): its ArgumentException or FormatException is the user's mistake, not a bug.</summary>
    public static T UserValue<T>(Func<T> f)
    {
        try
        {
            return f();
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new UserInputException(e.Message, e);
        }
    }

    /// <inheritdoc cref="UserValue{T}"/>
    public static void UserValue(Action f) => UserValue(() =>
    {
        f();
        return 0;
    });

    /// <summary>True when SHARPSEEK_DEBUG=1 asks for stack traces.</summary>
    public static bool DebugFromEnvironment() => Environment.GetEnvironmentVariable("SHARPSEEK_DEBUG") == "1";
}
