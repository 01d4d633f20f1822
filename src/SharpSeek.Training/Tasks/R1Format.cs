// The R1 chat format for training and evaluation: the prompt of a problem is DeepSeek-R1's chat template with the
// generation prompt, "<｜begin▁of▁sentence｜><｜User｜>PROMPT<｜Assistant｜><think>\n", and the completion is the
// rest of the reply, "...steps...\n</think>\n\n... \boxed{N}" followed by the EOS token. Prompt and completion are
// encoded separately, so the training tokens are exactly those generation sees.
//
// A model directory tells chat which template to use through tokenizer_config.json's chat_template. A model trained
// here to reason gets DeepSeek-V3's Jinja template (what sharpseek-mini ships) with DeepSeek-R1's two changes for
// plain chat: the generation prompt opens the think block, and earlier assistant turns keep only the text after
// their last </think> (as in deepseek-ai/DeepSeek-R1's tokenizer_config.json).
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Tokenizer;

namespace SharpSeek.Training.Tasks;

/// <summary>Prompt and completion encoding in the R1 format, and R1 tokenizer directories.</summary>
public static class R1Format
{
    /// <summary>What the R1 generation prompt ends with (the completion continues after it).</summary>
    public const string ThinkPrefix = "<think>\n";

    private const string V3GenerationPrompt = "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}";
    private const string R1GenerationPrompt = "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}";
    private const string V3AssistantTurn = "{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}";
    private const string R1AssistantTurn = "{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}";

    /// <summary>The R1 template (<see cref="ChatTemplateKind.DeepSeekR1"/>) with the tokenizer's BOS text.</summary>
    public static ChatTemplate Template(BpeTokenizer tokenizer) =>
        ChatTemplate.Create(ChatTemplateKind.DeepSeekR1, tokenizer.Config?.BosToken ?? ChatTemplate.DefaultBosToken);

    /// <summary>Token ids of the prompt: the messages rendered with the generation prompt.</summary>
    public static int[] EncodePrompt(BpeTokenizer tokenizer, ChatTemplate template, IReadOnlyList<ChatMessage> messages) =>
        tokenizer.Encode(template.Render(messages, addGenerationPrompt: true));

    /// <summary>Token ids of one user message as a prompt.</summary>
    public static int[] EncodePrompt(BpeTokenizer tokenizer, ChatTemplate template, string user) =>
        EncodePrompt(tokenizer, template, [ChatMessage.User(user)]);

    /// <summary>
    /// Token ids of a reply as the completion of a prompt rendered by <paramref name="template"/>, EOS appended. For
    /// the R1 template the reply must start with "&lt;think&gt;\n", which the generation prompt already holds.
    /// </summary>
    /// <exception cref="ArgumentException">An R1 reply that does not open with the think block.</exception>
    public static int[] EncodeCompletion(BpeTokenizer tokenizer, ChatTemplate template, string reply)
    {
        int eos = tokenizer.EosId ?? throw new ArgumentException("the tokenizer has no EOS token");
        if (template.Kind == ChatTemplateKind.DeepSeekR1)
        {
            if (!reply.StartsWith(ThinkPrefix, StringComparison.Ordinal))
                throw new ArgumentException("the reply must start with \"<think>\\n\" (the R1 generation prompt opens the think block)");
            reply = reply[ThinkPrefix.Length..];
        }
        int[] ids = tokenizer.Encode(reply);
        Array.Resize(ref ids, ids.Length + 1);
        ids[^1] = eos;
        return ids;
    }

    /// <summary>
    /// Writes tokenizer.json and a tokenizer_config.json whose chat_template is R1's into <paramref name="outDir"/>,
    /// from the tokenizer directory <paramref name="tokenizerDir"/> (unchanged when its template is R1's already).
    /// Returns <paramref name="outDir"/>.
    /// </summary>
    public static string WriteTokenizerDirectory(string tokenizerDir, string outDir)
    {
        string json = Path.Combine(tokenizerDir, "tokenizer.json"), cfg = Path.Combine(tokenizerDir, "tokenizer_config.json");
        if (!File.Exists(json) || !File.Exists(cfg))
            throw new FileNotFoundException($"{tokenizerDir}: needs tokenizer.json and tokenizer_config.json", cfg);
        JsonObject config = JsonNode.Parse(File.ReadAllText(cfg)) as JsonObject ?? throw new InvalidDataException($"{cfg}: not a JSON object");
        string template = config["chat_template"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
            : throw new InvalidDataException($"{cfg}: field 'chat_template' is missing or not a string");
        if (ChatTemplate.DetectKind(template) != ChatTemplateKind.DeepSeekR1)
        {
            if (!template.Contains(V3GenerationPrompt, StringComparison.Ordinal) || !template.Contains(V3AssistantTurn, StringComparison.Ordinal))
                throw new InvalidDataException($"{cfg}: field 'chat_template' is not DeepSeek-V3's template; cannot derive R1's from it");
            config["chat_template"] = template.Replace(V3GenerationPrompt, R1GenerationPrompt, StringComparison.Ordinal)
                .Replace(V3AssistantTurn, R1AssistantTurn, StringComparison.Ordinal);
        }
        Directory.CreateDirectory(outDir);
        File.Copy(json, Path.Combine(outDir, "tokenizer.json"), overwrite: true);
        AtomicFile.WriteText(Path.Combine(outDir, "tokenizer_config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        return outDir;
    }
}
