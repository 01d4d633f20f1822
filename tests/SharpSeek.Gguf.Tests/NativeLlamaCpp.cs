// Current llama.cpp built natively (../shared/tools/llama-cpp/build.sh: llama.cpp de3ff81 with the llama-logits tool)
// as an out-of-process oracle. Found through SHARPSEEK_LLAMA_CPP (the folder holding llama-logits) or the build
// script's default $HOME/.cache/llama-cpp-3.22.1/bin; tests that need it are skipped with that message when absent
// (CI does not build it).
using System.Diagnostics;
using System.Runtime.InteropServices;
using SharpSeek.Formats.Safetensors;

namespace SharpSeek.Gguf.Tests;

internal static class NativeLlamaCpp
{
    public const string EnvVar = "SHARPSEEK_LLAMA_CPP";

    /// <summary>The folder holding llama-logits, or null.</summary>
    public static string? BinDir { get; } = Find();

    public static string SkipReason =>
        $"native llama.cpp not found: set {EnvVar} to the folder holding llama-logits, or build it with " +
        "../shared/tools/llama-cpp/build.sh (installs to $HOME/.cache/llama-cpp-3.22.1/bin)";

    private static string? Find()
    {
        string? env = Environment.GetEnvironmentVariable(EnvVar);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        foreach (string? dir in new[] { env, Path.Combine(home, ".cache", "llama-cpp-3.22.1", "bin") })
        {
            if (!string.IsNullOrEmpty(dir) && File.Exists(Path.Combine(dir, "llama-logits")))
                return dir;
        }
        return null;
    }

    /// <summary>
    /// Logits [T, V] of one uncached pass over <paramref name="ids"/> by llama-logits (F32 KV cache, no flash
    /// attention). A load or run failure throws with llama.cpp's last output lines naming the file.
    /// </summary>
    public static float[] Logits(string gguf, int[] ids, int vocab, int threads = 2)
    {
        string dir = BinDir ?? throw new InvalidOperationException(SkipReason);
        string output = Path.Combine(Path.GetTempPath(), "sharpseek-llama-logits-" + Guid.NewGuid().ToString("N")[..12] + ".safetensors");
        try
        {
            Run(Path.Combine(dir, "llama-logits"), [gguf, string.Join(",", ids), output, threads.ToString(System.Globalization.CultureInfo.InvariantCulture)], gguf);
            using var f = SafetensorsFile.Open(output);
            TensorInfo t = f.Tensors["logits"];
            if (t.Shape is not [long rows, long cols] || rows != ids.Length || cols != vocab)
                throw new InvalidDataException($"llama-logits on {gguf}: logits {t.ShapeText}, expected [{ids.Length}, {vocab}]");
            return MemoryMarshal.Cast<byte, float>(f.Bytes(t)).ToArray();
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>llama-quantize beside llama-logits, or in the build tree the build script leaves
    /// (`cmake --build $HOME/.cache/llama-cpp-3.22.1/build --target llama-quantize`), or null.</summary>
    public static string? QuantizeExe { get; } = FindQuantize();

    public static string QuantizeSkipReason =>
        BinDir is null ? SkipReason : "llama-quantize not built: cmake --build $HOME/.cache/llama-cpp-3.22.1/build --target llama-quantize";

    private static string? FindQuantize()
    {
        if (BinDir is null)
            return null;
        foreach (string exe in new[] { Path.Combine(BinDir, "llama-quantize"), Path.Combine(BinDir, "..", "build", "bin", "llama-quantize") })
        {
            if (File.Exists(exe))
                return Path.GetFullPath(exe);
        }
        return null;
    }

    /// <summary>llama.cpp's own quantization of a GGUF file (`llama-quantize IN OUT TYPE`).</summary>
    public static void Quantize(string input, string output, string type) =>
        Run(QuantizeExe ?? throw new InvalidOperationException(QuantizeSkipReason), [input, output, type, "2"], input);

    private static void Run(string exe, string[] args, string gguf)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(), stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(exe)} on {gguf} ran past 5 minutes");
        }
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            string[] lines = (stdout.Result + stderr.Result).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            throw new InvalidOperationException($"llama.cpp ({exe}) failed on {gguf} with exit code {p.ExitCode}:\n  " + string.Join("\n  ", lines.TakeLast(25)));
        }
    }
}

/// <summary>A fact skipped, with <see cref="NativeLlamaCpp.SkipReason"/>, when native llama.cpp is absent.</summary>
public sealed class LlamaCppFactAttribute : FactAttribute
{
    public LlamaCppFactAttribute()
    {
        if (NativeLlamaCpp.BinDir is null)
            Skip = NativeLlamaCpp.SkipReason;
    }
}

/// <summary>A theory skipped, with <see cref="NativeLlamaCpp.SkipReason"/>, when native llama.cpp is absent.</summary>
public sealed class LlamaCppTheoryAttribute : TheoryAttribute
{
    public LlamaCppTheoryAttribute()
    {
        if (NativeLlamaCpp.BinDir is null)
            Skip = NativeLlamaCpp.SkipReason;
    }
}

/// <summary>A theory skipped when native llama.cpp's llama-quantize is absent.</summary>
public sealed class LlamaQuantizeTheoryAttribute : TheoryAttribute
{
    public LlamaQuantizeTheoryAttribute()
    {
        if (NativeLlamaCpp.QuantizeExe is null)
            Skip = NativeLlamaCpp.QuantizeSkipReason;
    }
}
