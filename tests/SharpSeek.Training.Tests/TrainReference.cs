// Reads a fixture's train_reference.safetensors (spec: ../shared/fixtures/README.md, train_reference section).
using SharpSeek.Formats.Safetensors;

namespace SharpSeek.Training.Tests;

internal sealed class TrainReference : IDisposable
{
    private readonly Checkpoint _file;

    public TrainReference(string fixture)
    {
        Directory = SharpSeek.Tests.Fixtures.Hf(fixture);
        string path = Path.Combine(Directory, "train_reference.safetensors");
        _file = Checkpoint.FromFiles(Directory, [path], weightMap: null);
        long[] ids = _file.ReadInt64("input_ids");
        var shape = _file.Info("input_ids").Shape;
        B = (int)shape[0];
        T = (int)shape[1];
        Inputs = ids.Select(i => (int)i).ToArray();
        // next-token targets within each row; the last position of a row has none (transformers' shifted loss)
        Targets = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t < T; t++)
                Targets[b * T + t] = t + 1 < T ? Inputs[b * T + t + 1] : -1;
        }
        Loss = _file.ReadFloats("loss", 1)[0];
        AdamwLosses = _file.ReadFloats("adamw_losses", _file.Info("adamw_losses").Shape);
    }

    /// <summary>Fixture folders that have a train_reference.safetensors.</summary>
    public static IEnumerable<object[]> Folders() =>
        System.IO.Directory.GetDirectories(Path.Combine(SharpSeek.Tests.Fixtures.Root, "hf"))
            .Where(d => File.Exists(Path.Combine(d, "train_reference.safetensors")))
            .OrderBy(d => d, StringComparer.Ordinal)
            .Select(d => new object[] { Path.GetFileName(d) });

    public string Directory { get; }
    public int B { get; }
    public int T { get; }
    public int[] Inputs { get; }
    public int[] Targets { get; }
    public float Loss { get; }
    public float[] AdamwLosses { get; }

    public IEnumerable<string> GradNames => _file.Names.Where(n => n.StartsWith("grad.", StringComparison.Ordinal)).Order(StringComparer.Ordinal);

    public float[] Grad(string name) => _file.ReadFloats("grad." + name, _file.Info("grad." + name).Shape);

    public bool HasGrad(string name) => _file.Contains("grad." + name);

    public void Dispose() => _file.Dispose();
}
