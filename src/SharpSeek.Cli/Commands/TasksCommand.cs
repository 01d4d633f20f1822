// sharpseek tasks: writes the train / validation / test task files of a family (arith or word), deterministic in the
// seed, splits deduplicated against each other, each line with the worked R1-format reply for SFT.
using System.CommandLine;
using SharpSeek.Training.Tasks;

namespace SharpSeek.Cli;

internal static class TasksCommand
{
    public static Command Create()
    {
        var family = new Option<string>("--family") { Description = "arith or word", DefaultValueFactory = _ => "arith" };
        var outDir = new Option<string>("--out") { Description = "Directory for FAMILY-train.jsonl, FAMILY-validation.jsonl, FAMILY-test.jsonl", Required = true };
        var train = new Option<int>("--train") { Description = "Training problems per level (arith: 2, 3, 4 operators; word: 1, 2, 3 steps)", DefaultValueFactory = _ => 10000 };
        var validation = new Option<int>("--validation") { Description = "Validation problems per level", DefaultValueFactory = _ => 100 };
        var test = new Option<int>("--test") { Description = "Test problems per level", DefaultValueFactory = _ => 1000 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the three splits (each split draws from its own stream)", DefaultValueFactory = _ => 17 };
        var text = new Option<string>("--text") { Description = "Also write the train split as plain text for pre-training (one problem and its worked solution per paragraph)" };
        var shard = new Option<string>("--shard") { Description = "Also tokenize that text into this token shard for pre-training (needs --text and --tokenizer)" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer directory or tokenizer.json for --shard" };
        var exclude = new Option<string[]>("--exclude") { Description = "Task files (JSON lines with \"prompt\") whose problems no split may contain, e.g. another seed's test split (repeatable)", AllowMultipleArgumentsPerToken = true };
        var trace = new Option<string>("--trace") { Description = "How arith solutions spell out sums and differences: compact (one step a line), columns (digit by digit with carries and borrows) or columns-ordered (as columns, every step starting from its operands in the expression's order)", DefaultValueFactory = _ => "compact" };
        var cmd = new Command("tasks", "Write verifiable task files (arith, word) with worked R1-format solutions") { family, outDir, train, validation, test, seed, exclude, trace, text, shard, tokenizer };
        cmd.SetAction(pr =>
        {
            string f = pr.GetValue(family)!;
            if (Array.IndexOf(TaskSet.Families, f) < 0)
                throw new UserInputException($"--family must be arith or word, got '{f}'");
            int tr = pr.GetValue(train), va = pr.GetValue(validation), te = pr.GetValue(test);
            if (tr < 0 || va < 0 || te < 0)
                throw new UserInputException("--train, --validation and --test must be >= 0");
            string dir = pr.GetValue(outDir)!;
            string? shardFile = pr.GetValue(shard), tokenizerPath = pr.GetValue(tokenizer);
            if (shardFile is not null && (pr.GetValue(text) is null || tokenizerPath is null))
                throw new UserInputException("--shard needs --text and --tokenizer");
            var excluded = new HashSet<string>(StringComparer.Ordinal);
            foreach (string file in pr.GetValue(exclude) ?? [])
                excluded.UnionWith(TaskSet.Read(file).Select(t => t.Prompt));
            ArithTrace arithTrace = pr.GetValue(trace) switch
            {
                "compact" => ArithTrace.Compact,
                "columns" => ArithTrace.Columns,
                "columns-ordered" => ArithTrace.ColumnsOrdered,
                var other => throw new UserInputException($"--trace must be compact, columns or columns-ordered, got '{other}'"),
            };
            var splits = TaskSet.GenerateSplits(f, tr, va, te, pr.GetValue(seed), excluded, arithTrace);
            foreach ((string name, List<TaskExample> list) in new[] { ("train", splits.Train), ("validation", splits.Validation), ("test", splits.Test) })
            {
                string path = Path.Combine(dir, $"{f}-{name}.jsonl");
                TaskSet.Write(path, list);
                Console.WriteLine($"{path}: {list.Count} problems");
            }
            if (pr.GetValue(text) is string textFile)
            {
                // paragraphs are documents to `train` (data.text), so a problem and its solution hold no blank line
                var sb = new System.Text.StringBuilder();
                foreach (TaskExample t in splits.Train)
                    sb.Append(t.Prompt).Append('\n').Append(t.Response!.Replace("\n\n", "\n", StringComparison.Ordinal)).Append("\n\n");
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(textFile))!);
                Formats.Safetensors.AtomicFile.WriteText(textFile, sb.ToString());
                Console.WriteLine($"{textFile}: {splits.Train.Count} problems as text");
                if (shardFile is not null)
                {
                    Tokenizer.BpeTokenizer tok = Directory.Exists(tokenizerPath) ? Tokenizer.BpeTokenizer.LoadFromDirectory(tokenizerPath!) : Tokenizer.BpeTokenizer.Load(tokenizerPath!);
                    if (File.Exists(shardFile))
                        File.Delete(shardFile); // TokenizeText keeps an existing shard; this one is rebuilt from the new text
                    Training.ShardData.TokenizeText(textFile, tokenizerPath!, shardFile, tok.VocabSize);
                    using Data.TokenShard s = Data.TokenShard.Open(shardFile);
                    Console.WriteLine($"{shardFile}: {s.TokenCount:N0} tokens");
                }
            }
            return 0;
        });
        return cmd;
    }
}
