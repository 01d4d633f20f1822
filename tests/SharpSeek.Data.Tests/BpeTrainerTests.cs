// BPE training: merge order and tie-breaking, determinism, vocabulary size, and the written tokenizer.json as
// the Rust reference tokenizer (Hugging Face tokenizers) reads it, and SharpSeek.Tokenizer's BpeTokenizer on it.
using System.Text.Json.Nodes;
using SharpSeek.Tokenizer;
using SharpSeek.Tokenizer.Tests;

namespace SharpSeek.Data.Tests;

public sealed class BpeTrainerTests
{
    private const string Austen = """
        It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.
        However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is considered the rightful property of some one or other of their daughters.
        "My dear Mr. Bennet," said his lady to him one day, "have you heard that Netherfield Park is let at last?"
        Mr. Bennet replied that he had not.
        "But it is," returned she; "for Mrs. Long has just been here, and she told me all about it."
        Mr. Bennet made no answer.
        "Do you not want to know who has taken it?" cried his wife impatiently.
        "You want to tell me, and I have no objection to hearing it."
        This was invitation enough.
        "Why, my dear, you must know, Mrs. Long says that Netherfield is taken by a young man of large fortune from the north of England; that he came down on Monday in a chaise and four to see the place, and was so much delighted with it, that he agreed with Mr. Morris immediately; that he is to take possession before Michaelmas, and some of his servants are to be in the house by the end of next week."
        "What is his name?"
        "Bingley."
        "Is he married or single?"
        "Oh! Single, my dear, to be sure! A single man of large fortune; four or five thousand a year. What a fine thing for our girls!"
        """;

    private static List<string> SampleDocuments(int copies)
    {
        var docs = new List<string>();
        for (int i = 0; i < copies; i++)
            docs.Add(Austen.Replace("Bennet", i % 2 == 0 ? "Bennet" : "Lucas") + $"\nChapter {i + 1}, page {37 * i % 500}.");
        return docs;
    }

    private static readonly BpeTrainerOptions Small = new() { VocabSize = 600 };

    [Fact]
    public void MergesMostFrequentPairFirstAndBreaksTiesBySmallerIds()
    {
        // "ab" and " cd" once each: every pair has count 1, so ids decide: a < c < Ġ in vocabulary order.
        BpeVocabulary model = BpeTrainer.Train(["ab cd"], new BpeTrainerOptions { VocabSize = 300, MinFrequency = 1 });
        Assert.Equal(new[] { "a b", "c d", "Ġ cd" }, MergeStrings(model));

        // Count first: (x, y) and (Ġ, x) occur 3 times, (x, y) has the smaller ids; then " xy", then (a, b) twice.
        model = BpeTrainer.Train(["ab ab xy xy xy"], new BpeTrainerOptions { VocabSize = 300, MinFrequency = 2 });
        Assert.Equal(new[] { "x y", "Ġ xy", "a b" }, MergeStrings(model));
    }

    [Fact]
    public void StopsAtMinFrequency()
    {
        BpeVocabulary model = BpeTrainer.Train(["one two two"], new BpeTrainerOptions { VocabSize = 4096, MinFrequency = 2 });
        Assert.Equal(new[] { "t w", "Ġ tw", "Ġtw o" }, MergeStrings(model)); // "one" occurs once: never merged
        Assert.Equal(3 + 256 + 3 + SpecialTokens.Trailing.Count, model.VocabSize);
    }

    [Fact]
    public void ReachesTheRequestedVocabularyWithSpecialTokensInPlace()
    {
        BpeVocabulary model = BpeTrainer.Train(SampleDocuments(8), Small);
        BpeTokenizer tokenizer = model.CreateTokenizer();
        Assert.Equal(600, model.VocabSize);
        Assert.Equal(600, tokenizer.VocabSize);
        Assert.Equal(0, SpecialTokenId(model, SpecialTokens.BeginOfSentence));
        Assert.Equal(1, SpecialTokenId(model, SpecialTokens.EndOfSentence));
        Assert.Equal(2, SpecialTokenId(model, SpecialTokens.Pad));
        Assert.Equal("!", model.Tokens[3]);
        Assert.Equal("!", tokenizer.IdToToken(3));
        Assert.Equal(600 - SpecialTokens.Trailing.Count, SpecialTokenId(model, SpecialTokens.User));
        Assert.Equal(599, SpecialTokenId(model, SpecialTokens.ToolSep));
        Assert.Equal(599, tokenizer.TokenToId(SpecialTokens.ToolSep));
        Assert.Equal(0, tokenizer.BosId);
        Assert.Equal(1, tokenizer.EosId);
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["x"], new BpeTrainerOptions { VocabSize = 200 }));
    }

    [Fact]
    public void TrainingIsDeterministic()
    {
        using var dir = new TempDirectory();
        BpeTrainer.Train(SampleDocuments(8), Small).WriteHuggingFace(dir.File("a"));
        BpeTrainer.Train(SampleDocuments(8), Small).WriteHuggingFace(dir.File("b"));
        Assert.Equal(File.ReadAllBytes(dir.File("a/tokenizer.json")), File.ReadAllBytes(dir.File("b/tokenizer.json")));
        Assert.Equal(File.ReadAllBytes(dir.File("a/tokenizer_config.json")), File.ReadAllBytes(dir.File("b/tokenizer_config.json")));
    }

    [Fact]
    public void RustTokenizerLoadsTheFileAndAgrees()
    {
        using var dir = new TempDirectory();
        BpeVocabulary model = BpeTrainer.Train(SampleDocuments(8), Small);
        BpeTokenizer tokenizer = model.CreateTokenizer();
        model.WriteHuggingFace(dir.Path);
        string path = dir.File("tokenizer.json");
        using var rust = new Tokenizers.DotNet.Tokenizer(path);

        // The training text: same ids as BpeTokenizer on the trained vocabulary, and an exact round trip.
        foreach (string doc in SampleDocuments(2).Concat(TrickyTexts.All))
        {
            uint[] ids = rust.Encode(doc);
            Assert.Equal(tokenizer.Encode(doc), ids.Select(i => (int)i).ToArray());
            Assert.Equal(tokenizer.EncodePlainText(doc), ids.Select(i => (int)i).ToArray());
            Assert.Equal(doc, rust.Decode(ids));
            Assert.Equal(doc, tokenizer.Decode(tokenizer.Encode(doc)));
        }

        // Frequent words were learned as single tokens.
        foreach (string word in new[] { " Bennet", " fortune", " single", " the", " Netherfield" })
        {
            uint[] ids = rust.Encode(word);
            Assert.Single(ids);
            Assert.Equal(tokenizer.TokenToId(ByteLevel.Encode(System.Text.Encoding.UTF8.GetBytes(word))), (int)ids[0]);
        }

        // Chat markers are whole tokens at their ids.
        uint[] chat = rust.Encode(SpecialTokens.User + "Hi" + SpecialTokens.Assistant + SpecialTokens.ThinkBegin);
        Assert.Equal(SpecialTokenId(model, SpecialTokens.User), (int)chat[0]);
        Assert.Equal(SpecialTokenId(model, SpecialTokens.ThinkBegin), (int)chat[^1]);
        Assert.Equal(SpecialTokenId(model, SpecialTokens.Assistant), (int)chat[^2]);
        Assert.Equal(chat.Select(i => (int)i).ToArray(), tokenizer.Encode(SpecialTokens.User + "Hi" + SpecialTokens.Assistant + SpecialTokens.ThinkBegin));

        // SharpSeek.Tokenizer reads the files back to the same vocabulary, merges and special tokens.
        BpeTokenizer loaded = BpeTokenizer.LoadFromDirectory(dir.Path);
        Assert.Equal(model.VocabSize, loaded.VocabSize);
        Assert.Equal(MergeStrings(model), ((JsonArray)JsonNode.Parse(File.ReadAllText(path))!["model"]!["merges"]!).Select(m => (string?)m).ToArray());
        Assert.Equal(model.AddedTokens, loaded.AddedTokens);
        for (int id = 0; id < model.VocabSize; id++)
            Assert.Equal(tokenizer.IdToToken(id), loaded.IdToToken(id));
        Assert.Equal(0, loaded.BosId);
        Assert.Equal(1, loaded.EosId);
        foreach (string doc in SampleDocuments(2).Concat(TrickyTexts.All))
            Assert.Equal(tokenizer.Encode(doc, addSpecialTokens: true), loaded.Encode(doc, addSpecialTokens: true));
    }

    [Fact]
    public void WrittenFilesHaveDeepSeekV3Structure()
    {
        using var dir = new TempDirectory();
        BpeTrainer.Train(SampleDocuments(2), Small).WriteHuggingFace(dir.Path);
        string fixtures = Path.Combine(SharpSeek.Tests.Fixtures.Root, "deepseek-v3-tokenizer");
        JsonNode v3 = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtures, "tokenizer.json")))!;
        JsonNode ours = JsonNode.Parse(File.ReadAllText(dir.File("tokenizer.json")))!;

        Assert.Equal(v3.AsObject().Select(p => p.Key), ours.AsObject().Select(p => p.Key));
        foreach (string section in new[] { "normalizer", "pre_tokenizer", "post_processor", "decoder", "truncation", "padding" })
            Assert.True(JsonNode.DeepEquals(v3[section], ours[section]), section);
        Assert.Equal(v3["model"]!.AsObject().Select(p => p.Key), ours["model"]!.AsObject().Select(p => p.Key));
        foreach (string key in new[] { "type", "dropout", "unk_token", "fuse_unk", "byte_fallback" })
            Assert.True(JsonNode.DeepEquals(v3["model"]![key], ours["model"]![key]), key);
        Assert.True(JsonNode.DeepEquals(v3["added_tokens"]![0], ours["added_tokens"]![0]));

        JsonNode v3Config = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtures, "tokenizer_config.json")))!;
        JsonNode config = JsonNode.Parse(File.ReadAllText(dir.File("tokenizer_config.json")))!;
        Assert.Equal((string?)v3Config["chat_template"], (string?)config["chat_template"]);
        Assert.True((bool)config["add_bos_token"]!);
        Assert.True(JsonNode.DeepEquals(v3Config["bos_token"], config["bos_token"]));
        Assert.True(JsonNode.DeepEquals(v3Config["eos_token"], config["eos_token"]));
        Assert.Equal(SpecialTokens.Pad, (string?)config["pad_token"]!["content"]);
    }

    [Fact]
    public void ShippedTokenizerEncodesAsWhenItWasTrained()
    {
        // models/sharpseek-mini was trained by this trainer (scripts/train-tokenizer.sh); the ids below are those of
        // the trainer's former encoder, and the Rust tokenizer agrees on them.
        string dir = SharpSeek.Tests.Fixtures.ShippedModel("sharpseek-mini");
        BpeTokenizer tokenizer = BpeTokenizer.LoadFromDirectory(dir);
        using var rust = new Tokenizers.DotNet.Tokenizer(Path.Combine(dir, "tokenizer.json"));
        (string Text, int[] Ids)[] golden =
        [
            ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
                [1021, 332, 261, 1763, 533, 1924, 558, 3645, 873, 970, 14, 322, 261, 2962, 442, 290, 2194, 1806, 275, 261, 675, 3274, 14, 687, 301, 290, 922, 275, 261, 1346, 16]),
            ("\"My dear Mr. Bennet,\" said his lady to him one day, \"have you heard that Netherfield Park is let at last?\"\n",
                [4, 1869, 1545, 544, 16, 2811, 827, 475, 350, 2407, 285, 379, 486, 563, 14, 400, 270, 311, 339, 1087, 322, 525, 3068, 1997, 3335, 332, 754, 378, 1006, 2902]),
        ];
        foreach ((string text, int[] ids) in golden)
        {
            Assert.Equal(ids, tokenizer.EncodePlainText(text));
            Assert.Equal(ids, tokenizer.Encode(text));
            Assert.Equal(ids, rust.Encode(text).Select(i => (int)i).ToArray());
            Assert.Equal(text, tokenizer.Decode(ids));
        }
        foreach (string doc in SampleDocuments(2).Concat(TrickyTexts.All))
            Assert.Equal(rust.Encode(doc).Select(i => (int)i).ToArray(), tokenizer.EncodePlainText(doc));
        Assert.Equal(0, tokenizer.BosId);
        Assert.Equal(1, tokenizer.EosId);
        Assert.Equal(4096, tokenizer.VocabSize);
    }

    private static string[] MergeStrings(BpeVocabulary model) =>
        model.Merges.Select(m => model.Tokens[m.Left] + " " + model.Tokens[m.Right]).ToArray();

    private static int SpecialTokenId(BpeVocabulary model, string content) => model.AddedTokens.Single(a => a.Content == content).Id;
}
