// Model directories for end-to-end text tests: a fixture checkpoint plus the tiny byte-level BPE tokenizer in
// TestData/tiny-tokenizer (vocabulary 1024 = the model's: ids 0/1 BOS/EOS, 256 byte tokens, 752 merges learnt
// from the project docs, then the chat and tool-call tokens at 1010..1023) and DeepSeek-V3's tokenizer_config.json.
using SharpSeek.Model;
using SharpSeek.Tests;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference.Tests;

internal sealed class TinyChatModel : IDisposable
{
    private TinyChatModel(string dir, bool r1)
    {
        Directory = dir;
        string src = Fixtures.Hf("v3-tiny");
        foreach (string f in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(src, f), Path.Combine(dir, f));
        string tok = Path.Combine(AppContext.BaseDirectory, "TestData", "tiny-tokenizer");
        File.Copy(Path.Combine(tok, "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        string config = File.ReadAllText(Path.Combine(tok, "tokenizer_config.json"));
        if (r1) // DeepSeek-R1's generation prompt opens the think block
            config = config.Replace("{{'<｜Assistant｜>'}}{% endif %}\"", "{{'<｜Assistant｜><think>\\\\n'}}{% endif %}\"", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config);
        Weights = WeightLoader.Load(dir);
        Tokenizer = BpeTokenizer.LoadFromDirectory(dir);
    }

    public string Directory { get; }

    public ModelWeights Weights { get; }

    public BpeTokenizer Tokenizer { get; }

    /// <summary>A fresh copy in a temporary directory; <paramref name="r1"/> gives it DeepSeek-R1's chat template.</summary>
    public static TinyChatModel Create(bool r1 = false)
    {
        string dir = Path.Combine(Path.GetTempPath(), "sharpseek-tiny-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        return new TinyChatModel(dir, r1);
    }

    public void Dispose()
    {
        Weights.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
