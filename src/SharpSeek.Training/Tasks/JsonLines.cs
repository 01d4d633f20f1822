// Reading JSON Lines files (task files, SFT data): one JSON object per non-blank line, errors naming the file and line.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpSeek.Training.Tasks;

/// <summary>The objects of a JSON Lines file.</summary>
public static class JsonLines
{
    /// <summary>
    /// Every non-blank line of <paramref name="path"/> as a JSON object, with an error factory that names the file and
    /// line (<c>path:line: message</c>); a line that is not a JSON object is such an error.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for the not-found error ("task file").</param>
    public static IEnumerable<(JsonObject Object, Func<string, InvalidDataException> Error)> Read(string path, string what)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{what} not found: {path}", path);
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line))
                continue;
            int at = lineNo;
            InvalidDataException Err(string msg) => new($"{path}:{at}: {msg}");
            JsonObject o;
            try
            {
                o = JsonNode.Parse(line) as JsonObject ?? throw Err("not a JSON object");
            }
            catch (JsonException e)
            {
                throw Err($"not valid JSON ({e.Message})");
            }
            yield return (o, Err);
        }
    }
}
