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
        var cmd = new Command("tasks", "Write verifiable task files (arith, word) with worked R1-format solutions") { family, outDir, train, validation, test, seed };
        cmd.SetAction(pr =>
        {
            string f = pr.GetValue(family)!;
            if (Array.IndexOf(TaskSet.Families, f) < 0)
                throw new UserInputException($"--family must be arith or word, got '{f}'");
            int tr = pr.GetValue(train), va = pr.GetValue(validation), te = pr.GetValue(test);
            if (tr < 0 || va < 0 || te < 0)
                throw new UserInputException("--train, --validation and --test must be >= 0");
            string dir = pr.GetValue(outDir)!;
            var splits = TaskSet.GenerateSplits(f, tr, va, te, pr.GetValue(seed));
            foreach ((string name, List<TaskExample> list) in new[] { ("train", splits.Train), ("validation", splits.Validation), ("test", splits.Test) })
            {
                string path = Path.Combine(dir, $"{f}-{name}.jsonl");
                TaskSet.Write(path, list);
                Console.WriteLine($"{path}: {list.Count} problems");
            }
            return 0;
        });
        return cmd;
    }
}
