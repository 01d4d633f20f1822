// A GGUF deepseek2 file opened once for everything a session reads from it: the configuration, the tokenizer and
// the weights (GgufModel.Open). The mapping is shared by reference count: it is released when this object and every
// ModelWeights loaded from it have been disposed, in any order.
using SharpSeek.Formats.Gguf;
using SharpSeek.Tokenizer;

namespace SharpSeek.Model.Gguf;

/// <summary>An open GGUF model file: configuration, tokenizer and weights from one parse of the file.</summary>
public sealed class GgufModelFile : IDisposable
{
    private readonly GgufFile _file;
    private readonly Lock _read = new(); // Config and Tokenizer are read once even when first asked from two threads
    private ModelConfig? _config;
    private BpeTokenizer? _tokenizer;
    private bool _tokenizerRead, _disposed;
    private int _refs = 1; // this object's own reference, plus one per loaded ModelWeights still alive

    internal GgufModelFile(GgufFile file) => _file = file;

    /// <summary>The .gguf file's path.</summary>
    public string Path => _file.FilePath;

    /// <summary>The parsed file (metadata and tensor directory).</summary>
    public GgufFile File
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _file;
        }
    }

    /// <summary>The model configuration (docs/deepseek-architecture.md §9 metadata), read and validated on first use.</summary>
    /// <exception cref="NotSupportedException">Another architecture, or a feature SharpSeek does not run.</exception>
    /// <exception cref="InvalidDataException">A required key is missing or inconsistent.</exception>
    public ModelConfig Config
    {
        get
        {
            lock (_read)
                return _config ??= GgufModel.ReadConfig(File);
        }
    }

    /// <summary>The tokenizer stored in the file (tokenizer.ggml.*), or null when it has none; read on first use.</summary>
    public BpeTokenizer? Tokenizer
    {
        get
        {
            lock (_read)
            {
                if (!_tokenizerRead)
                {
                    _tokenizer = GgufTokenizer.Load(File);
                    _tokenizerRead = true;
                }
                return _tokenizer;
            }
        }
    }

    /// <summary>The tokenizer stored in the file, for callers that cannot run without one.</summary>
    /// <exception cref="InvalidDataException">The file has no tokenizer metadata.</exception>
    public BpeTokenizer RequireTokenizer() =>
        Tokenizer ?? throw new InvalidDataException($"{Path}: the GGUF file has no tokenizer (tokenizer.ggml.* metadata); use token ids");

    /// <summary>Loads the weights of the file's own <see cref="Config"/>.</summary>
    /// <param name="options">Load options (Dtype converts the linear layers as for checkpoints).</param>
    public ModelWeights LoadWeights(LoadOptions? options = null) => LoadWeights(Config, options);

    /// <summary>Loads the weights of <paramref name="config"/> (views into the mapping unless <paramref name="options"/> converts them).</summary>
    /// <param name="config">The configuration to build.</param>
    /// <param name="options">Load options (Dtype converts the linear layers as for checkpoints).</param>
    public ModelWeights LoadWeights(ModelConfig config, LoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        GgufFile f = File;
        Interlocked.Increment(ref _refs);
        var owners = new WeightLoader.OwnerList { new Lease(this) };
        try
        {
            return GgufModel.Load(f, config, options, owners);
        }
        catch
        {
            owners.Dispose();
            throw;
        }
    }

    /// <summary>Releases this object's hold on the file; weights loaded from it stay valid until disposed.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Release();
    }

    private void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
            _file.Dispose();
    }

    // one loaded ModelWeights' hold on the file
    private sealed class Lease(GgufModelFile owner) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                owner.Release();
        }
    }
}
