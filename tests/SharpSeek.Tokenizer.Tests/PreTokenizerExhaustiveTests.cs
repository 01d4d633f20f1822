// Every Unicode scalar value of planes 0-3 and 14 (and a sample of the others) in contexts that exercise each
// alternative of the DeepSeek regexes, pre-tokenized by us and by the Rust reference. The reference runs with
// a WordLevel model whose vocabulary is exactly our pieces, so its ids equal ours only if every piece
// boundary is the same (a piece we did not produce would read as [UNK]).
using System.Text;
using System.Text.Json.Nodes;

namespace SharpSeek.Tokenizer.Tests;

public sealed class PreTokenizerExhaustiveTests
{
    private const int ChunkCount = 8;

    // planes 0-3 and 14 whole; planes 4-13 (unassigned) and 15-16 (private use) every 61st code point
    private static readonly int[] s_codePoints = Enumerable.Range(0, 0x110000)
        .Where(cp => cp is < 0xD800 or > 0xDFFF)
        .Where(cp => cp < 0x40000 || (cp >= 0xE0000 && cp < 0xF0000) || cp % 61 == 0)
        .ToArray();

    public static TheoryData<PreTokenizerKind, int> Chunks()
    {
        var data = new TheoryData<PreTokenizerKind, int>();
        foreach (PreTokenizerKind kind in Enum.GetValues<PreTokenizerKind>())
        {
            for (int chunk = 0; chunk < ChunkCount; chunk++)
                data.Add(kind, chunk);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Chunks))]
    public void Pieces_match_the_reference_for_every_code_point(PreTokenizerKind kind, int chunk)
    {
        int size = (s_codePoints.Length + ChunkCount - 1) / ChunkCount;
        string text = Contexts(kind, s_codePoints.AsSpan(chunk * size, Math.Min(size, s_codePoints.Length - chunk * size)));

        // vocabulary = our distinct pieces in byte-level form; id 0 is [UNK]
        var vocab = new Dictionary<string, int> { ["[UNK]"] = 0 };
        var byPiece = new Dictionary<string, int>(StringComparer.Ordinal);
        Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> lookup = byPiece.GetAlternateLookup<ReadOnlySpan<char>>();
        var list = new PieceList();
        new PreTokenizer(kind).Split(text, list);
        var want = new int[list.Count];
        for (int i = 0; i < list.Count; i++)
        {
            ReadOnlySpan<char> piece = text.AsSpan(list.Start(i), list.End(i) - list.Start(i));
            if (!lookup.TryGetValue(piece, out int id))
            {
                id = vocab.Count;
                vocab.Add(ByteLevelForm(piece), id);
                lookup[piece] = id;
            }
            want[i] = id;
        }
        var vocabJson = new JsonObject();
        foreach ((string k, int v) in vocab)
            vocabJson[k] = v;
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(),
            ["normalizer"] = null,
            ["pre_tokenizer"] = Oracle.PreTokenizerJson(kind),
            ["post_processor"] = null,
            ["decoder"] = null,
            ["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = vocabJson, ["unk_token"] = "[UNK]" },
        };
        string path = Oracle.WriteTemp(root);
        try
        {
            using var reference = new Tokenizers.DotNet.Tokenizer(path);
            int[] got = Oracle.Encode(reference, text);
            if (!want.SequenceEqual(got))
                Assert.Fail(Describe(kind, want, got, vocab));
        }
        finally
        {
            File.Delete(path);
        }
    }

    // The contexts of one code point c: letters, spaces, digits, punctuation and CJK on either side.
    // V3 looks at general categories, so each code point meets letters, marks of its own kind, digits, ASCII
    // punctuation, tabs, spaces, CJK and newlines; deepseek-llm looks only at literal ranges, White_Space and
    // char::is_numeric, so fewer neighbours do.
    private static string Contexts(PreTokenizerKind kind, ReadOnlySpan<int> codePoints)
    {
        var sb = new StringBuilder();
        foreach (int cp in codePoints)
        {
            string c = char.ConvertFromUtf32(cp);
            if (kind == PreTokenizerKind.DeepSeekLlm)
            {
                sb.Append('a').Append(c).Append("a ").Append(c).Append(c).Append("! ").Append(c).Append('\n');
                continue;
            }
            sb.Append('a').Append(c).Append("a ").Append(c).Append(c).Append('1').Append(c).Append("2!")
              .Append(c).Append('\t').Append(c).Append(' ').Append(c).Append("\u4E00").Append(c).Append("\u30A2")
              .Append(c).Append(" \n").Append(c).Append("  ").Append(c).Append('\r');
        }
        return sb.ToString();
    }

    private static string ByteLevelForm(ReadOnlySpan<char> piece)
    {
        byte[] bytes = new byte[Encoding.UTF8.GetByteCount(piece)];
        Encoding.UTF8.GetBytes(piece, bytes);
        return string.Create(bytes.Length, bytes, (chars, b) =>
        {
            for (int i = 0; i < b.Length; i++)
                chars[i] = ByteLevel.ByteToChar[b[i]];
        });
    }

    private static string Describe(PreTokenizerKind kind, int[] want, int[] got, Dictionary<string, int> vocab)
    {
        var byId = vocab.ToDictionary(kv => kv.Value, kv => kv.Key);
        int i = 0;
        while (i < Math.Min(want.Length, got.Length) && want[i] == got[i])
            i++;
        string Show(int[] ids) => string.Join(" | ", ids.Skip(Math.Max(0, i - 3)).Take(8).Select(id => Escape(byId[id])));
        return $"{kind}: first difference at piece {i} (ours {want.Length} pieces, reference {got.Length}); "
            + $"ours: {Show(want)}; reference: {Show(got)}";
    }

    private static string Escape(string byteLevel)
    {
        var bytes = byteLevel.Select(ch => (byte)ByteLevel.CharToByte[ch]).ToArray();
        string s = Encoding.UTF8.GetString(bytes);
        return string.Concat(s.EnumerateRunes().Select(r => r.Value is >= 0x21 and < 0x7F ? r.ToString() : $"U+{r.Value:X4}"));
    }
}
