// The response bodies of the OpenAI API as served (chat.completion, chat.completion.chunk, text_completion, model
// list, usage, errors), serialized by System.Text.Json source generation in snake_case. Fields that OpenAI sends as
// null (content of a tool-call message, finish_reason of a chunk, logprobs) are written as null, not left out.
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SharpSeek.Server;

internal sealed record PromptTokensDetails(int CachedTokens);

internal sealed record CompletionTokensDetails(int ReasoningTokens);

internal sealed record UsageJson(int PromptTokens, int CompletionTokens, int TotalTokens, PromptTokensDetails PromptTokensDetails,
                             CompletionTokensDetails? CompletionTokensDetails);

internal sealed record FunctionCallJson(string? Name, string Arguments);

internal sealed record ToolCallJson(int? Index, string Id, string Type, FunctionCallJson Function);

internal sealed record ChatMessageJson(
    string Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Content,
    string? ReasoningContent,
    IReadOnlyList<ToolCallJson>? ToolCalls);

internal sealed record ChatChoice(
    int Index,
    ChatMessageJson Message,
    string FinishReason,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Logprobs);

internal sealed record ChatCompletionJson(string Id, string Object, long Created, string Model, IReadOnlyList<ChatChoice> Choices,
                                      UsageJson Usage, string SystemFingerprint);

internal sealed record ChatDeltaJson(string? Role, string? Content, string? ReasoningContent, IReadOnlyList<ToolCallJson>? ToolCalls);

internal sealed record ChatChunkChoice(
    int Index,
    ChatDeltaJson Delta,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Logprobs);

internal sealed record ChatChunkJson(string Id, string Object, long Created, string Model, IReadOnlyList<ChatChunkChoice> Choices,
                                 UsageJson? Usage, string SystemFingerprint);

internal sealed record CompletionChoice(
    string Text,
    int Index,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Logprobs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

internal sealed record TextCompletionJson(string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChoice> Choices,
                                      UsageJson? Usage, string SystemFingerprint);

internal sealed record ModelJson(string Id, string Object, long Created, string OwnedBy);

internal sealed record ModelList(string Object, IReadOnlyList<ModelJson> Data);

internal sealed record HealthJson(string Status, string Model, int Active, int Queued);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
                             DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(ChatCompletionJson))]
[JsonSerializable(typeof(ChatChunkJson))]
[JsonSerializable(typeof(TextCompletionJson))]
[JsonSerializable(typeof(ModelJson))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(HealthJson))]
internal sealed partial class OpenAiJsonContext : JsonSerializerContext
{
    /// <summary>The context the server writes with: as declared, and text left unescaped where JSON allows it (quotes,
    /// non-ASCII), as OpenAI's API writes it.</summary>
    public static OpenAiJsonContext Api { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
