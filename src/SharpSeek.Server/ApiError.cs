// OpenAI's error object ({"error": {"message", "type", "param", "code"}}) and the exception that carries one to the
// error middleware with its HTTP status.
using System.Text.Json.Serialization;

namespace SharpSeek.Server;

/// <summary>A request that fails with an OpenAI error object and an HTTP status.</summary>
internal sealed class ApiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param: param, code: code);
}

internal sealed record ErrorBody(ErrorDetail Error);

internal sealed record ErrorDetail(
    string Message,
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);
