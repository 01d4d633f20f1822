// Incremental decoding for generation: ids arrive one at a time and a UTF-8 character may be split across
// two or more tokens (an emoji, a CJK char that BPE did not merge), so the trailing bytes of an incomplete
// character are held back until the token that completes them arrives. The concatenation of every Push
// and the final Flush equals BpeTokenizer.Decode of the same ids.
using System.Text;
using System.Text.Unicode;

namespace SharpSeek.Tokenizer;

/// <summary>Decodes ids one at a time; created by <see cref="BpeTokenizer.CreateStreamingDecoder"/>. Not thread-safe.</summary>
public sealed class StreamingDecoder
{
    private readonly BpeTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private byte[] _pending = new byte[64];
    private int _pendingCount;
    private char[] _chars = new char[64];

    internal StreamingDecoder(BpeTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Number of bytes held back because they start a UTF-8 character not yet complete.</summary>
    public int PendingByteCount => _pendingCount;

    /// <summary>Adds one id and returns the text it completes (empty while a character is still incomplete).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not a valid token id.</exception>
    public string Push(int id)
    {
        if (_skipSpecialTokens && _tokenizer.IsSpecial(id))
            return string.Empty;
        ReadOnlySpan<byte> bytes = _tokenizer.GetTokenBytes(id);
        if (_pendingCount + bytes.Length > _pending.Length)
            Array.Resize(ref _pending, Math.Max(2 * _pending.Length, _pendingCount + bytes.Length));
        bytes.CopyTo(_pending.AsSpan(_pendingCount));
        _pendingCount += bytes.Length;
        return Drain(isFinalBlock: false);
    }

    /// <summary>Returns what is still held back, an incomplete character reading as U+FFFD, and starts afresh.</summary>
    public string Flush() => Drain(isFinalBlock: true);

    /// <summary>Drops anything held back.</summary>
    public void Reset() => _pendingCount = 0;

    private string Drain(bool isFinalBlock)
    {
        if (_pendingCount == 0)
            return string.Empty;
        if (_chars.Length < _pendingCount)
            _chars = new char[Math.Max(2 * _chars.Length, _pendingCount)];
        // invalid bytes become U+FFFD now; an incomplete but still valid sequence at the end stays pending
        Utf8.ToUtf16(_pending.AsSpan(0, _pendingCount), _chars, out int read, out int written,
            replaceInvalidSequences: true, isFinalBlock);
        _pending.AsSpan(read, _pendingCount - read).CopyTo(_pending);
        _pendingCount -= read;
        return written == 0 ? string.Empty : new string(_chars, 0, written);
    }
}
