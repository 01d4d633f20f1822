// Edits of a tokenizer.json that keep every id: dropping the merges that join digits makes each ASCII digit its own
// token (as Llama's and PaLM's tokenizers split numbers), so "2592" is always 2 5 9 2 whatever BPE learned; the
// multi-digit tokens stay in the vocabulary, unreachable.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpSeek.Tokenizer;

/// <summary>Rewrites of a Hugging Face tokenizer.json.</summary>
public static class TokenizerEdits
{
    /// <summary>
    /// Removes every BPE merge whose result is made of ASCII digits only. Returns the new file text and the number of
    /// merges removed; throws <see cref="InvalidDataException"/> naming <paramref name="source"/> when the file has no
    /// <c>model.merges</c> array of "a b" strings or [a, b] pairs.
    /// </summary>
    public static (string Json, int Removed) DropDigitMerges(string json, string source)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
        if (root?["model"]?["merges"] is not JsonArray merges)
            throw new InvalidDataException($"{source}: no model.merges array");
        int removed = 0;
        for (int i = merges.Count - 1; i >= 0; i--)
        {
            string joined = merges[i] switch
            {
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>().Replace(" ", "", StringComparison.Ordinal),
                JsonArray { Count: 2 } pair when pair.All(p => p is JsonValue pv && pv.GetValueKind() == JsonValueKind.String)
                    => pair[0]!.GetValue<string>() + pair[1]!.GetValue<string>(),
                _ => throw new InvalidDataException($"{source}: model.merges[{i}] is neither \"a b\" nor a pair of strings"),
            };
            if (joined.Length > 0 && joined.All(char.IsAsciiDigit))
            {
                merges.RemoveAt(i);
                removed++;
            }
        }
        return (root.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }), removed);
    }
}
