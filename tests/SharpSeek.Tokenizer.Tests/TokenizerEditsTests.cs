// TokenizerEdits.DropDigitMerges on the real DeepSeek-V3 tokenizer: digits become single tokens, every other text
// keeps its ids, and a file without merges is refused with its name.
namespace SharpSeek.Tokenizer.Tests;

public class TokenizerEditsTests
{
    [Fact]
    public void WithoutDigitMergesEveryDigitIsOneTokenAndOtherTextKeepsItsIds()
    {
        (string json, int removed) = TokenizerEdits.DropDigitMerges(File.ReadAllText(TestData.TokenizerJsonPath), TestData.TokenizerJsonPath);
        Assert.True(removed > 100, $"only {removed} digit merges removed from the V3 tokenizer");
        string path = Path.Combine(Path.GetTempPath(), $"split-digits-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, json);
            BpeTokenizer split = BpeTokenizer.Load(path);
            BpeTokenizer original = BpeTokenizer.Load(TestData.TokenizerJsonPath);
            int[] digitIds = Enumerable.Range(0, 10).Select(d => original.Encode(d.ToString(System.Globalization.CultureInfo.InvariantCulture)).Single()).ToArray();
            foreach (string number in new[] { "12345", "1999", "000", "2592", "100" })
            {
                Assert.Equal(number.Select(c => digitIds[c - '0']), split.Encode(number));
                Assert.True(original.Encode(number).Length < number.Length, $"'{number}' was already one token per digit");
            }
            int[] prompt = split.Encode("What is 2592 + 89?");
            Assert.Equal(4 + 2, prompt.Count(id => digitIds.Contains(id)));
            foreach (string text in new[] { "Hello, world! The quick brown fox.", "def f(x):\n    return x * x", "日本語のテキスト", "naïve café" })
                Assert.Equal(original.Encode(text), split.Encode(text));
            Assert.Equal("In 1999, 12345 apples.", split.Decode(split.Encode("In 1999, 12345 apples.")));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AFileWithoutMergesIsRefusedWithItsName()
    {
        var e = Assert.Throws<InvalidDataException>(() => TokenizerEdits.DropDigitMerges("""{"model": {"vocab": {}}}""", "x/tokenizer.json"));
        Assert.Contains("x/tokenizer.json", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidDataException>(() => TokenizerEdits.DropDigitMerges("{not json", "y/tokenizer.json"));
        Assert.Contains("y/tokenizer.json", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidDataException>(() => TokenizerEdits.DropDigitMerges("""{"model": {"merges": [3]}}""", "z/tokenizer.json"));
        Assert.Contains("merges[0]", e.Message, StringComparison.Ordinal);
    }
}
