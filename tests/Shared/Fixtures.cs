// Locates tests/fixtures (copied from ../shared/fixtures) for every test project.
using System.Reflection;

namespace SharpSeek.Tests;

internal static class Fixtures
{
    public static string Root { get; } = FindRoot();

    public static string Hf(string name) => Path.Combine(Root, "hf", name);

    /// <summary>A model shipped in the repository's models/ folder (sharpseek-mini, sharpseek-r1).</summary>
    public static string ShippedModel(string name) => Path.GetFullPath(Path.Combine(Root, "..", "..", "models", name));

    /// <summary>Every fixture folder under hf/ that has a reference.safetensors: tests iterate these, not a fixed list.</summary>
    public static IEnumerable<object[]> HfFolders() =>
        Directory.GetDirectories(Path.Combine(Root, "hf"))
            .Where(d => File.Exists(Path.Combine(d, "reference.safetensors")))
            .OrderBy(d => d, StringComparer.Ordinal)
            .Select(d => new object[] { Path.GetFileName(d) });

    private static string FindRoot()
    {
        string? fromBuild = typeof(Fixtures).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "FixturesDir")?.Value;
        if (fromBuild is not null && Directory.Exists(fromBuild))
            return fromBuild;
        for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
        {
            string candidate = Path.Combine(d, "tests", "fixtures");
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException("tests/fixtures not found above " + AppContext.BaseDirectory);
    }
}
