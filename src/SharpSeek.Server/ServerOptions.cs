// Options of the HTTP server (one options object per concern, docs/design.md seam 7).
using SharpSeek.Inference;
using SharpSeek.Tokenizer;

namespace SharpSeek.Server;

/// <summary>How <see cref="SharpSeekServer"/> listens and serves.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind: an IP address or "localhost". Default 127.0.0.1 (loopback only).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (see <see cref="SharpSeekServer.Url"/>). Default 8080.</summary>
    public int Port { get; init; } = 8080;

    /// <summary>When set, every endpoint but <c>/health</c> and the page at <c>/</c> needs <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Largest request body in bytes; a larger one gets 413. Default 4 MiB.</summary>
    public long MaxRequestBodyBytes { get; init; } = 4L << 20;

    /// <summary>The model id reported by <c>/v1/models</c> and accepted in requests; null uses the session's.</summary>
    public string? ModelId { get; init; }

    /// <summary>Rendering where a request sets nothing (<c>serve --think</c>): <see cref="ChatRenderOptions.Thinking"/> (null:
    /// the template's default) and <see cref="ChatRenderOptions.ReasoningEffort"/>; a request's <c>thinking</c> and
    /// <c>reasoning_effort</c> fields override them. Its tools and generation-prompt switch are not used.</summary>
    public ChatRenderOptions RenderDefaults { get; init; } = new();

    /// <summary>The batching scheduler's options.</summary>
    public BatchSchedulerOptions Batching { get; init; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Host);
        if (Port is < 0 or > 65535)
            throw new ArgumentException($"port must be in 0..65535, got {Port}");
        if (ApiKey is { Length: 0 })
            throw new ArgumentException("the API key is empty");
        if (MaxRequestBodyBytes < 1024)
            throw new ArgumentException($"the body limit must be at least 1024 bytes, got {MaxRequestBodyBytes}");
        ArgumentNullException.ThrowIfNull(RenderDefaults);
        ArgumentNullException.ThrowIfNull(Batching);
        Batching.Validate();
    }
}
