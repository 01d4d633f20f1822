// The `word` task of issue 17: 1-3 step word problems about counts of things. A problem starts with someone holding
// a number of things; each step changes the count (gets more, gives some away, buys packs of several, the count
// is multiplied, shares equally and keeps one share); the question asks for the final count. The worked solution
// has one line per step. Counts stay within 0..9999 and every division is exact.
using System.Globalization;
using System.Text;

namespace SharpSeek.Training.Tasks;

/// <summary>Generator of <c>word</c> problems.</summary>
public static class WordTask
{
    private static readonly string[] Names = ["Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jack", "Kate", "Liam", "Mei", "Noah", "Olga", "Pedro"];
    private static readonly bool[] IsFemale = [true, false, true, false, true, false, true, false, true, false, true, false, true, false, true, false];
    private static readonly string[] Things = ["apples", "marbles", "books", "stickers", "coins", "pencils", "cards", "stamps", "shells", "eggs", "buttons", "cookies"];
    private static readonly string[] Packs = ["bags", "boxes", "packs", "jars", "baskets"];

    /// <summary>A generated word problem.</summary>
    /// <param name="Prompt">The question.</param>
    /// <param name="Answer">The final count.</param>
    /// <param name="Steps">Operations in the solution (1-3).</param>
    /// <param name="Solution">The worked reply in the R1 format (without EOS).</param>
    public sealed record Problem(string Prompt, long Answer, int Steps, string Solution);

    /// <summary>Draws a problem with <paramref name="steps"/> steps (1-3).</summary>
    public static Problem Generate(Rng rng, int steps)
    {
        if (steps is < 1 or > 3)
            throw new ArgumentOutOfRangeException(nameof(steps), $"word problems have 1-3 steps, got {steps}");
        var inv = CultureInfo.InvariantCulture;
        int who = Pick(rng, Names.Length);
        string name = Names[who], he = IsFemale[who] ? "She" : "He", his = IsFemale[who] ? "her" : "his", self = IsFemale[who] ? "herself" : "himself";
        string thing = Things[Pick(rng, Things.Length)];
        long count = 2 + Pick(rng, 49);
        var story = new StringBuilder($"{name} has {count.ToString(inv)} {thing}.");
        var work = new StringBuilder("<think>\n");
        work.Append(name).Append(" starts with ").Append(count.ToString(inv)).Append(".\n");
        string c(long v) => v.ToString(inv);
        for (int s = 0; s < steps; s++)
        {
            int kind = Pick(rng, 5);
            switch (kind)
            {
                case 0: // gets more
                {
                    long b = 1 + Pick(rng, 60);
                    story.Append($" {he} gets {c(b)} more {thing}.");
                    work.Append($"{c(count)} + {c(b)} = {c(count + b)}\n");
                    count += b;
                    break;
                }
                case 1 when count > 1: // gives some away
                {
                    long b = 1 + Pick(rng, (int)Math.Min(count - 1, 60));
                    story.Append($" {he} gives {c(b)} {thing} to a friend.");
                    work.Append($"{c(count)} - {c(b)} = {c(count - b)}\n");
                    count -= b;
                    break;
                }
                case 2: // buys packs
                {
                    long k = 2 + Pick(rng, 8), m = 2 + Pick(rng, 11);
                    string pack = Packs[Pick(rng, Packs.Length)];
                    story.Append($" {he} buys {c(k)} {pack} with {c(m)} {thing} in each.");
                    work.Append($"{c(k)} * {c(m)} = {c(k * m)}\n{c(count)} + {c(k * m)} = {c(count + k * m)}\n");
                    count += k * m;
                    break;
                }
                case 3 when count <= 999: // multiplied
                {
                    long k = 2 + Pick(rng, 3);
                    string times = k switch { 2 => "doubles", 3 => "triples", _ => "quadruples" };
                    story.Append($" Then {name} {times} {his} {thing}.");
                    work.Append($"{c(count)} * {c(k)} = {c(count * k)}\n");
                    count *= k;
                    break;
                }
                default: // shares equally, keeps one share; made exact by giving a few away first when needed
                {
                    long parts = 2 + Pick(rng, 3);
                    long rest = count % parts;
                    if (rest != 0)
                    {
                        story.Append($" {he} eats {c(rest)} of them.");
                        work.Append($"{c(count)} - {c(rest)} = {c(count - rest)}\n");
                        count -= rest;
                    }
                    if (count == 0)
                    {
                        count = parts * (1 + Pick(rng, 9));
                        story.Append($" {he} finds {c(count)} more.");
                        work.Append($"0 + {c(count)} = {c(count)}\n");
                    }
                    story.Append($" {he} shares them equally among {c(parts)} friends, {self} included, and keeps one share.");
                    work.Append($"{c(count)} / {c(parts)} = {c(count / parts)}\n");
                    count /= parts;
                    break;
                }
            }
        }
        story.Append($" How many {thing} does {name} have now?");
        work.Append("</think>\n\n").Append(name).Append(" has \\boxed{").Append(c(count)).Append('}');
        return new Problem(story.ToString(), count, steps, work.ToString());
    }

    private static int Pick(Rng rng, int n) => (int)(rng.NextUInt64() % (ulong)n);
}
