// An entry of tokenizer.json "added_tokens": text matched before pre-tokenization and mapped to one id.
namespace SharpSeek.Tokenizer;

/// <summary>A token matched in the raw text before pre-tokenization (tokenizer.json <c>added_tokens</c>).</summary>
/// <param name="Id">Its id.</param>
/// <param name="Content">The text it matches.</param>
/// <param name="Special">Special tokens are dropped by <see cref="BpeTokenizer.Decode"/> when asked to skip them.</param>
/// <param name="LStrip">The match takes in the whitespace on its left.</param>
/// <param name="RStrip">The match takes in the whitespace on its right.</param>
/// <param name="SingleWord">Matches only where no word character touches it.</param>
/// <param name="Normalized">Matched after normalization (in a second pass) rather than on the raw text.</param>
public sealed record AddedToken(
    int Id,
    string Content,
    bool Special,
    bool LStrip = false,
    bool RStrip = false,
    bool SingleWord = false,
    bool Normalized = false);
