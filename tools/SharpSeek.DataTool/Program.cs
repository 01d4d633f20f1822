// sharpseek-data: builds the corpus, trains the tokenizer and writes token shards (scripts/*.sh call it).
using System.Diagnostics;
using SharpSeek.Data;
using SharpSeek.Data.Corpus;
using SharpSeek.Tokenizer;

namespace SharpSeek.DataTool;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0)
            return Usage();
        try
        {
            Dictionary<string, string> options = ParseOptions(args.AsSpan(1));
            switch (args[0])
            {
                case "corpus":
                    CorpusBuilder.Build(Required(options, "packages"), Required(options, "out"), Console.Out);
                    return 0;
                case "train-tokenizer":
                    TrainTokenizer(options);
                    return 0;
                case "shard":
                    Shard(options);
                    return 0;
                default:
                    return Usage();
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or InvalidDataException or NotSupportedException or KeyNotFoundException)
        {
            Console.Error.WriteLine($"sharpseek-data {args[0]}: {e.Message}");
            return 1;
        }
    }

    // Trains on the corpus's training files (never the validation text) and writes tokenizer.json + config.
    private static void TrainTokenizer(Dictionary<string, string> options)
    {
        string corpus = Required(options, "corpus");
        string output = Required(options, "out");
        int vocabSize = int.Parse(options.GetValueOrDefault("vocab-size", "4096"));
        var watch = Stopwatch.StartNew();
        var documents = new List<string>();
        foreach (CorpusFile file in CorpusBuilder.Files.Where(f => !f.IsValidation))
            documents.AddRange(CorpusText.ReadDocuments(Path.Combine(corpus, file.FileName)));
        BpeVocabulary model = BpeTrainer.Train(documents, new BpeTrainerOptions { VocabSize = vocabSize, Log = Console.Out });
        model.WriteHuggingFace(output);
        Console.WriteLine($"wrote {Path.Combine(output, "tokenizer.json")}: {model.VocabSize} tokens, {model.MergeCount} merges, {watch.Elapsed.TotalSeconds:F1} s");
    }

    // Writes one shard per corpus file (NAME.txt -> NAME.tokens) and reports tokens and bytes per token. Documents
    // are plain text: a special token's string in them is encoded as text, never as the token.
    private static void Shard(Dictionary<string, string> options)
    {
        string tokenizerPath = Required(options, "tokenizer");
        BpeTokenizer tokenizer = BpeTokenizer.Load(tokenizerPath);
        string corpus = Required(options, "corpus");
        string output = Required(options, "out");
        int eos = tokenizer.TokenToId(SpecialTokens.EndOfSentence)
            ?? throw new KeyNotFoundException($"{tokenizerPath}: the tokenizer has no special token '{SpecialTokens.EndOfSentence}'");
        long totalTokens = 0, totalBytes = 0;
        foreach (CorpusFile file in CorpusBuilder.Files)
        {
            string text = Path.Combine(corpus, file.FileName);
            List<string> documents = CorpusText.ReadDocuments(text);
            long bytes = documents.Sum(d => (long)CorpusText.Utf8.GetByteCount(d));
            string shard = Path.Combine(output, Path.ChangeExtension(file.FileName, ".tokens"));
            (long tokens, long docs) = TokenShardWriter.WriteDocuments(shard, documents, tokenizer.EncodePlainText, tokenizer.VocabSize, eos);
            long textTokens = tokens - docs; // without the EOS after each document
            Console.WriteLine($"{Path.GetFileName(shard)}: {tokens:N0} tokens ({docs:N0} documents), {bytes:N0} text bytes, {(double)bytes / textTokens:F3} bytes/token{(file.IsValidation ? " [validation]" : "")}");
            if (!file.IsValidation)
            {
                totalTokens += tokens;
                totalBytes += bytes;
            }
        }
        Console.WriteLine($"training shards: {totalTokens:N0} tokens, {totalBytes:N0} text bytes");
    }

    private static Dictionary<string, string> ParseOptions(ReadOnlySpan<string> args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"expected '--name value', got '{args[i]}'");
            options[args[i][2..]] = args[++i];
        }
        return options;
    }

    private static string Required(Dictionary<string, string> options, string name) =>
        options.TryGetValue(name, out string? value) ? value : throw new ArgumentException($"missing --{name}");

    private static int Usage()
    {
        Console.Error.WriteLine("""
            usage: sharpseek-data corpus --packages DIR --out DIR
                   sharpseek-data train-tokenizer --corpus DIR --out DIR [--vocab-size 4096]
                   sharpseek-data shard --tokenizer tokenizer.json --corpus DIR --out DIR
            """);
        return 2;
    }
}
