// In-process A/B of decode kernel variants on a GGUF model: 16-token greedy rounds (2 threads, bf16 latent cache, a
// fresh 256-token random prompt per variant, re-prefilled every 10 rounds) alternate the variants, so that all see the
// same minutes of a shared host; prints the median tokens/s and every round. The variants switch the internal choices
// Q4KInterleavedMatrix.Use512 and Q6KInterleavedMatrix.UseOverride (by reflection: they are not public settings).
using System.Diagnostics;
using System.Reflection;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;

if (args.Length < 1)
{
    Console.Error.WriteLine("usage: SharpSeek.KernelAB FILE.gguf [rounds]");
    return 2;
}
string path = args[0];
int rounds = args.Length > 1 ? int.Parse(args[1]) : 10;
PropertyInfo q4 = typeof(Q4KInterleavedMatrix).GetProperty("Use512", BindingFlags.NonPublic | BindingFlags.Static)!;
PropertyInfo q6 = typeof(Q6KInterleavedMatrix).GetProperty("UseOverride", BindingFlags.NonPublic | BindingFlags.Static)!;
Console.WriteLine($"this machine's choice: Q4_K 512-bit {q4.GetValue(null)}, Q6_K interleaved {Q6KInterleavedMatrix.IsUsed}");
using ModelWeights w = GgufModel.Load(path);
var tr = new Transformer(w, new ThreadedBackend(2));
int V = w.Config.VocabSize;
var rng = new Random(1);
var logits = new float[V];

KvCache Prefill()
{
    KvCache cache = tr.CreateCache(CacheType.BF16);
    TokenSlot[] slots = Enumerable.Range(0, 256).Select(i => new TokenSlot(0, i, rng.Next(V))).ToArray();
    tr.Forward(slots, [cache], [255], logits);
    return cache;
}

int ArgMax(float[] l)
{
    int best = 0;
    for (int i = 1; i < l.Length; i++)
    {
        if (l[i] > l[best])
            best = i;
    }
    return best;
}

(string Name, bool Q4, bool Q6)[] variants = [("row/256-bit", false, false), ("q4-512", true, false), ("q6-interleaved", false, true), ("both", true, true)];
var tps = variants.ToDictionary(v => v.Name, _ => new List<double>());
var caches = variants.ToDictionary(v => v.Name, _ => Prefill());
var next = variants.ToDictionary(v => v.Name, _ => rng.Next(V));
for (int r = 0; r <= rounds; r++) // round 0 warms up
{
    foreach ((string name, bool useQ4, bool useQ6) in variants)
    {
        if (useQ4 && !System.Runtime.Intrinsics.X86.Avx512BW.IsSupported)
            continue;
        q4.SetValue(null, useQ4);
        q6.SetValue(null, (bool?)useQ6);
        KvCache cache = caches[name];
        if (cache.Length > 256 + 160)
            caches[name] = cache = Prefill();
        var sw = Stopwatch.StartNew();
        int t = next[name];
        for (int g = 0; g < 16; g++)
        {
            tr.Forward([new TokenSlot(0, cache.Length, t)], [cache], [0], logits);
            t = ArgMax(logits);
        }
        next[name] = t;
        if (r > 0)
            tps[name].Add(16 / sw.Elapsed.TotalSeconds);
    }
}
foreach ((string name, _, _) in variants)
{
    if (tps[name].Count == 0)
        continue;
    List<double> sorted = tps[name].Order().ToList();
    Console.WriteLine($"{name,-15} median {sorted[sorted.Count / 2],7:F1} tok/s  [{string.Join(", ", tps[name].Select(x => x.ToString("F0")))}]");
}
return 0;
