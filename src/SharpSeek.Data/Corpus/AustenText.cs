// Jane Austen's six novels from the R package janeaustenr (Debian r-cran-janeaustenr): each novel is a
// character vector of Project Gutenberg's hard-wrapped lines in the lazy-load database data/Rdata.rdx/.rdb.
// Lines are joined into paragraphs (one per line, blank line between), one document per novel.
namespace SharpSeek.Data.Corpus;

/// <summary>Extracts Austen's novels from janeaustenr's data files.</summary>
public static class AustenText
{
    /// <summary>The novels in publication order, by their janeaustenr variable names.</summary>
    public static readonly IReadOnlyList<string> Novels =
        ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"];

    /// <summary>Reads one novel (a variable of the database) and returns it as one normalised document.</summary>
    public static string ReadNovel(RLazyLoadDatabase database, string name)
    {
        ArgumentNullException.ThrowIfNull(database);
        RObject value = database.Read(name);
        if (value.Type != RType.Character)
            throw new InvalidDataException($"janeaustenr variable '{name}' is {value.Type}, expected a character vector");
        return FromLines(value.Strings!);
    }

    /// <summary>Turns hard-wrapped lines into one document of paragraphs separated by blank lines.</summary>
    public static string FromLines(IEnumerable<string?> lines) =>
        CorpusText.NormalizeDocument(string.Join("\n\n", CorpusText.UnwrapParagraphs(lines)));
}
