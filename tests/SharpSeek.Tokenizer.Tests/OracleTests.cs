// Our tokenizer against the Rust reference (Hugging Face tokenizers through Tokenizers.DotNet) on random and
// real text: exact ids, exact round trip, and the same decoded text for random id sequences.
using System.Text;
using SharpSeek.Tests;

namespace SharpSeek.Tokenizer.Tests;

public sealed class OracleTests
{
    private static readonly string[] AddedContents =
        TestData.V3.AddedTokens.Select(t => t.Content).Where(c => !c.Contains("place▁holder", StringComparison.Ordinal))
            .Concat(["<｜place▁holder▁no▁7｜>", "<｜place▁holder▁no▁77｜>", "<｜place▁holder▁no▁777｜>"]).ToArray();

    [Theory]
    [InlineData(1, 2500)]
    [InlineData(2, 2500)]
    [InlineData(3, 2500)]
    [InlineData(4, 2500)]
    public void Random_text_encodes_to_the_reference_ids(int seed, int count)
    {
        var rng = new Random(seed);
        var inputs = new List<string>(count);
        for (int i = 0; i < count; i++)
            inputs.Add(RandomText.Next(rng, AddedContents));
        CheckAgainstReference(TestData.V3, Oracle.V3, inputs);
    }

    [Theory]
    [InlineData(11, 1500)]
    public void Random_text_with_the_deepseek_llm_pre_tokenizer_encodes_to_the_reference_ids(int seed, int count)
    {
        var rng = new Random(seed);
        var inputs = new List<string>(count);
        for (int i = 0; i < count; i++)
            inputs.Add(RandomText.Next(rng, AddedContents));
        Assert.Equal(PreTokenizerKind.DeepSeekLlm, Oracle.OursLlm.PreTokenizer);
        CheckAgainstReference(Oracle.OursLlm, Oracle.Llm, inputs);
    }

    [Fact]
    public void Real_text_encodes_to_the_reference_ids()
    {
        List<string> chunks = RealTextChunks(maxBytes: 2_500_000);
        Assert.True(chunks.Count >= 2000, $"only {chunks.Count} real-text chunks found");
        CheckAgainstReference(TestData.V3, Oracle.V3, chunks);
    }

    [Fact]
    public void Real_text_with_the_deepseek_llm_pre_tokenizer_encodes_to_the_reference_ids()
    {
        List<string> chunks = RealTextChunks(maxBytes: 800_000);
        CheckAgainstReference(Oracle.OursLlm, Oracle.Llm, chunks);
    }

    [Fact]
    public void Long_runs_encode_to_the_reference_ids()
    {
        string[] inputs =
        [
            new string(' ', 2000) + "x", new string('\n', 2000), string.Concat(Enumerable.Repeat("\r\n", 1000)),
            new string('9', 10_000), new string('a', 20_000), string.Concat(Enumerable.Repeat("ab", 8000)),
            string.Concat(Enumerable.Repeat("🚀", 3000)), string.Concat(Enumerable.Repeat("深度", 4000)),
            string.Concat(Enumerable.Repeat("<｜User｜>", 1000)), new string('!', 7000) + "\n\n\n",
            string.Concat(Enumerable.Repeat(" \t", 1000)) + "end",
        ];
        CheckAgainstReference(TestData.V3, Oracle.V3, inputs);
        CheckAgainstReference(Oracle.OursLlm, Oracle.Llm, inputs);
    }

    [Fact]
    public void Random_id_sequences_decode_to_the_reference_text()
    {
        // the reference decodes with skip_special_tokens = true; sequences of raw byte tokens give invalid UTF-8
        var rng = new Random(5);
        BpeTokenizer ours = TestData.V3;
        int mismatches = 0;
        string? first = null;
        for (int n = 0; n < 2000; n++)
        {
            var ids = new int[rng.Next(1, 40)];
            for (int i = 0; i < ids.Length; i++)
                ids[i] = rng.Next(4) == 0 ? rng.Next(0, 256) : rng.Next(0, ours.VocabSize);
            string want = Oracle.V3.Decode(ids.Select(id => (uint)id).ToArray());
            string got = ours.Decode(ids, skipSpecialTokens: true);
            if (want != got)
            {
                mismatches++;
                first ??= $"ids [{string.Join(',', ids)}]: reference '{want}', ours '{got}'";
            }
        }
        Assert.True(mismatches == 0, $"{mismatches} of 2000 sequences decode differently; first: {first}");
    }

    private static void CheckAgainstReference(BpeTokenizer ours, Tokenizers.DotNet.Tokenizer reference, IReadOnlyList<string> inputs)
    {
        int idMismatches = 0, roundTripFailures = 0;
        string? firstId = null, firstRoundTrip = null;
        foreach (string text in inputs)
        {
            int[] got = ours.Encode(text);
            int[] want = Oracle.Encode(reference, text);
            if (!got.AsSpan().SequenceEqual(want))
            {
                idMismatches++;
                firstId ??= FirstDifference(ours, text, want, got);
            }
            if (ours.Decode(got) != text)
            {
                roundTripFailures++;
                firstRoundTrip ??= Escape(text);
            }
        }
        Assert.True(idMismatches == 0, $"{idMismatches} of {inputs.Count} inputs differ; first: {firstId}");
        Assert.True(roundTripFailures == 0, $"{roundTripFailures} of {inputs.Count} inputs do not round-trip; first: {firstRoundTrip}");
    }

    private static string FirstDifference(BpeTokenizer t, string text, int[] want, int[] got)
    {
        int i = 0;
        while (i < Math.Min(want.Length, got.Length) && want[i] == got[i])
            i++;
        string Show(int[] ids) => string.Join(" ", ids.Skip(Math.Max(0, i - 2)).Take(6).Select(id => $"{id}:{Escape(t.Decode([id]))}"));
        return $"text '{Escape(text.Length > 300 ? text[..300] : text)}' at token {i}: reference {Show(want)}; ours {Show(got)}";
    }

    private static string Escape(string s) =>
        string.Concat(s.EnumerateRunes().Select(r => r.Value is >= 0x20 and < 0x7F ? r.ToString() : $"\\u{{{r.Value:X}}}"));

    // Source and documentation of this repository, the shared docs and the system's license texts, in chunks of
    // whole lines of about 1 KiB (and a few whole files).
    private static List<string> RealTextChunks(int maxBytes)
    {
        string repo = Path.GetFullPath(Path.Combine(Fixtures.Root, "..", ".."));
        var files = new List<string>();
        AddFiles(files, Path.Combine(repo, "src"), "*.cs");
        AddFiles(files, Path.Combine(repo, "tests"), "*.cs");
        AddFiles(files, repo, "*.md");
        AddFiles(files, Path.Combine(repo, "..", "shared"), "*.md");
        AddFiles(files, "/usr/share/common-licenses", "*");
        AddFiles(files, "/usr/share/doc", "copyright");
        files.Sort(StringComparer.Ordinal);

        var chunks = new List<string>();
        long total = 0;
        var sb = new StringBuilder();
        foreach (string file in files)
        {
            string text;
            try
            {
                text = File.ReadAllText(file, new UTF8Encoding(false, throwOnInvalidBytes: true));
            }
            catch (Exception e) when (e is DecoderFallbackException or IOException or UnauthorizedAccessException)
            {
                continue; // not UTF-8 text
            }
            if (text.Length > 0 && text.Length < 20_000 && chunks.Count % 50 == 0)
                chunks.Add(text);
            foreach (string line in text.Split('\n'))
            {
                sb.Append(line).Append('\n');
                if (sb.Length >= 1024)
                {
                    chunks.Add(sb.ToString());
                    total += sb.Length;
                    sb.Clear();
                }
            }
            if (total >= maxBytes)
                break;
        }
        if (sb.Length > 0)
            chunks.Add(sb.ToString());
        return chunks;
    }

    private static void AddFiles(List<string> files, string dir, string pattern)
    {
        if (!Directory.Exists(dir))
            return;
        foreach (string f in Directory.EnumerateFiles(dir, pattern, SearchOption.AllDirectories))
        {
            if (f.Contains("/bin/", StringComparison.Ordinal) || f.Contains("/obj/", StringComparison.Ordinal))
                continue;
            if (new FileInfo(f).Length is > 0 and < 2_000_000)
                files.Add(f);
        }
    }
}
