// Stop strings over streamed text: text that could still be the start of a stop string is held back until
// the next delta settles it, so a stop string is never emitted, even when it spans several tokens
// (vLLM's detokenizer and llama.cpp's server hold back the same partial matches).
using System.Text;

namespace SharpSeek.Inference;

/// <summary>Filters streamed text against stop strings; not thread-safe.</summary>
public sealed class StopStringFilter
{
    private readonly string[] _stops;
    private readonly StringBuilder _held = new();

    /// <summary>Creates a filter for <paramref name="stopStrings"/> (empty strings are ignored).</summary>
    public StopStringFilter(IEnumerable<string> stopStrings)
    {
        ArgumentNullException.ThrowIfNull(stopStrings);
        _stops = stopStrings.Where(s => !string.IsNullOrEmpty(s)).Distinct(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The stop string found by the last <see cref="Push"/>, or null.</summary>
    public string? Matched { get; private set; }

    /// <summary>Number of characters held back as a possible start of a stop string.</summary>
    public int HeldLength => _held.Length;

    /// <summary>
    /// Adds a text delta and returns what can be emitted now. When a stop string is completed, returns the text
    /// before it, sets <see cref="Matched"/> and drops the rest.
    /// </summary>
    public string Push(string delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (_stops.Length == 0 || Matched is not null)
            return Matched is null ? delta : string.Empty;
        if (delta.Length == 0)
            return string.Empty;
        _held.Append(delta);
        string text = _held.ToString();
        int first = -1;
        string? found = null;
        foreach (string stop in _stops)
        {
            int at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first))
            {
                first = at;
                found = stop;
            }
        }
        if (found is not null)
        {
            Matched = found;
            _held.Clear();
            return text[..first];
        }
        int keep = 0; // longest suffix of text that is a proper prefix of a stop string
        foreach (string stop in _stops)
        {
            for (int len = Math.Min(stop.Length - 1, text.Length); len > keep; len--)
            {
                if (text.AsSpan(text.Length - len).SequenceEqual(stop.AsSpan(0, len)))
                {
                    keep = len;
                    break;
                }
            }
        }
        _held.Clear();
        _held.Append(text, text.Length - keep, keep);
        return keep == 0 ? text : text[..^keep];
    }

    /// <summary>Returns the held-back text (it can no longer become a stop string) and empties the filter.</summary>
    public string Flush()
    {
        string s = _held.ToString();
        _held.Clear();
        return s;
    }

    /// <summary>Empties the filter and forgets a match.</summary>
    public void Reset()
    {
        _held.Clear();
        Matched = null;
    }
}
