// POST /v1/chat/completions: messages -> the model's DeepSeek chat template (V3, R1, V3.1, V3.2 or V4; docs/chat-formats.md)
// rendered with the request's DeepSeek fields "thinking" and "reasoning_effort" over the server's defaults (serve
// --think); tools are printed by the V3.2/V4 encoders, or described in a system message for V3/R1/V3.1 (ToolPrompt)
// -> tokens -> the batch scheduler. The generated text is split by ChatOutputParser into reasoning (reasoning_content,
// as DeepSeek's API returns it), content and the template's tool-call markup (V3, V3.1 or DSML -> tool_calls).
// tool_choice "required" or a named function starts the answer with that markup (and the name), so the model
// completes a call. Streamed as server-sent events (chat.completion.chunk, then data: [DONE]) or whole.
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpSeek.Inference;
using SharpSeek.Tokenizer;

namespace SharpSeek.Server;

internal static class ChatCompletions
{
    public static async Task Handle(HttpContext ctx, SharpSeekServer server)
    {
        ChatRequest req;
        using (JsonDocument doc = await SharpSeekServer.ReadJson(ctx).ConfigureAwait(false))
            req = SharpSeekServer.Parse(doc, OpenAiRequests.ParseChat);
        server.CheckModel(req.Model);

        ChatTemplate template = server.Template;
        if (req.Thinking is not null && !template.SupportsThinking)
            throw ApiException.BadRequest($"'thinking' is not supported by this model's {ChatTemplate.NameOf(template.Kind)} chat template " +
                                          $"({(template.Kind == ChatTemplateKind.DeepSeekR1 ? "R1 always thinks" : "V3 never thinks")})", "thinking");
        ChatRenderOptions render = server.Options.RenderDefaults with
        {
            AddGenerationPrompt = true,
            Thinking = req.Thinking ?? server.Options.RenderDefaults.Thinking,
            ReasoningEffort = req.ReasoningEffort ?? server.Options.RenderDefaults.ReasoningEffort,
            Tools = null,
        };
        bool offerTools = req.Tools.Count > 0 && req.ToolChoice != ToolChoiceKind.None;
        var messages = new List<ChatMessage>();
        if (offerTools && template.ToolCallFormat is ToolCallFormat.DsmlV32 or ToolCallFormat.DsmlV4)
            render = render with { Tools = req.ToolDefinitions }; // the encoders print the schemas themselves
        else if (offerTools)
            messages.Add(ChatMessage.System(ToolPrompt.Describe(req.Tools, template.Kind))); // V3, R1, V3.1 render no tool list
        messages.AddRange(req.Messages);
        string prompt;
        try
        {
            prompt = template.Render(messages, render);
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message, "messages");
        }
        var parser = ChatOutputParser.For(template, render, prompt);
        string forced = ForcedPrefix(req, template, parser.StartsInReasoning);
        int[] ids = server.Tokenizer.Encode(prompt + forced);
        GenerationOptions options = server.Generation(req, ids.Length);
        ScheduledGeneration g = server.Submit(ids, options, ctx.RequestAborted);

        parser.Push(forced); // the forced start of a call is markup the parser must see, never content
        var reply = new Reply(server, g, "chatcmpl-" + Guid.NewGuid().ToString("N")[..24], parser.StartsInReasoning);
        if (req.Stream)
            await Stream(ctx, server, req, g, parser, reply).ConfigureAwait(false);
        else
            await Whole(ctx, server, g, parser, reply).ConfigureAwait(false);
    }

    // tool_choice "required": the answer starts a call in the template's markup; a named function: a call of it, up
    // to its arguments. A reply still in its think block closes it first (so forcing skips the reasoning).
    private static string ForcedPrefix(ChatRequest req, ChatTemplate template, bool inReasoning)
    {
        if (req.ToolChoice is not (ToolChoiceKind.Required or ToolChoiceKind.Named))
            return "";
        var sb = new StringBuilder();
        if (inReasoning) // R1 writes a blank line after its think block; V3.1, V3.2 and V4 none
            sb.Append(ReasoningParser.EndTag).Append(template.Kind == ChatTemplateKind.DeepSeekR1 ? "\n\n" : "");
        string? name = req.ToolChoice == ToolChoiceKind.Named ? req.ToolChoiceName : null;
        switch (template.ToolCallFormat)
        {
            case ToolCallFormat.DeepSeekV31: // NAME<sep>ARGS
                sb.Append(ToolCallParser.CallsBegin).Append(ToolCallParser.CallBegin);
                if (name is not null)
                    sb.Append(name).Append(ToolCallParser.Sep);
                break;
            case ToolCallFormat.DsmlV32 or ToolCallFormat.DsmlV4: // \n\n<｜DSML｜BLOCK>\n<｜DSML｜invoke name="NAME">\n
                sb.Append("\n\n").Append(DsmlParser.BlockStart(template.ToolCallFormat)).Append('\n')
                  .Append('<').Append(ChatTemplate.DsmlToken).Append("invoke name=\"");
                if (name is not null)
                    sb.Append(name).Append("\">\n");
                break;
            default: // function<sep>NAME\n```json\nARGS\n```
                sb.Append(ToolCallParser.CallsBegin).Append(ToolCallParser.CallBegin).Append("function").Append(ToolCallParser.Sep);
                if (name is not null)
                    sb.Append(name).Append("\n```json\n");
                break;
        }
        return sb.ToString();
    }

    private static async Task Whole(HttpContext ctx, SharpSeekServer server, ScheduledGeneration g, ChatOutputParser parser, Reply reply)
    {
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        var calls = new List<ToolCallJson>();
        GenerationUpdate last = default;
        await foreach (GenerationUpdate u in g.ReadAllAsync(ctx.RequestAborted).ConfigureAwait(false))
        {
            ChatDelta d = reply.Push(parser, u);
            reasoning.Append(d.Reasoning);
            content.Append(d.Content);
            foreach (ToolCall c in d.ToolCalls)
                calls.Add(reply.Call(c, index: null));
            last = u;
        }
        string? text = calls.Count > 0 && content.Length == 0 ? null : content.ToString();
        var message = new ChatMessageJson("assistant", text, reply.StartsInReasoning || reasoning.Length > 0 ? reasoning.ToString() : null,
                                          calls.Count > 0 ? calls : null);
        var body = new ChatCompletionJson(reply.Id, "chat.completion", reply.Created, server.ModelId,
                                      [new ChatChoice(0, message, reply.FinishReason(last, calls.Count > 0), null)],
                                      reply.Usage(last), Reply.Fingerprint);
        await SharpSeekServer.Json(ctx, body, OpenAiJsonContext.Api.ChatCompletionJson).ConfigureAwait(false);
    }

    private static async Task Stream(HttpContext ctx, SharpSeekServer server, ChatRequest req, ScheduledGeneration g, ChatOutputParser parser, Reply reply)
    {
        var sse = new ServerSentEvents(ctx);
        await sse.Start().ConfigureAwait(false);
        await sse.Write(Chunk(server, reply, new ChatDeltaJson("assistant", "", null, null), null), OpenAiJsonContext.Api.ChatChunkJson).ConfigureAwait(false);
        int calls = 0;
        try
        {
            await foreach (GenerationUpdate u in g.ReadAllAsync(ctx.RequestAborted).ConfigureAwait(false))
            {
                ChatDelta d = reply.Push(parser, u);
                if (!d.IsEmpty)
                {
                    List<ToolCallJson>? tc = d.ToolCalls.Count == 0 ? null : [.. d.ToolCalls.Select(c => reply.Call(c, calls++))];
                    var delta = new ChatDeltaJson(null, d.Content.Length > 0 ? d.Content : null, d.Reasoning.Length > 0 ? d.Reasoning : null, tc);
                    await sse.Write(Chunk(server, reply, delta, null), OpenAiJsonContext.Api.ChatChunkJson).ConfigureAwait(false);
                }
                if (u.FinishReason is not null)
                {
                    string finish = reply.FinishReason(u, calls > 0);
                    await sse.Write(Chunk(server, reply, new ChatDeltaJson(null, null, null, null), finish), OpenAiJsonContext.Api.ChatChunkJson).ConfigureAwait(false);
                    if (req.IncludeUsage)
                    {
                        var usage = new ChatChunkJson(reply.Id, "chat.completion.chunk", reply.Created, server.ModelId, [], reply.Usage(u), Reply.Fingerprint);
                        await sse.Write(usage, OpenAiJsonContext.Api.ChatChunkJson).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ctx.RequestAborted.IsCancellationRequested)
        {
            await sse.Error(e).ConfigureAwait(false); // the status line is gone: the error goes in the stream
            return;
        }
        await sse.Done().ConfigureAwait(false);
    }

    private static ChatChunkJson Chunk(SharpSeekServer server, Reply reply, ChatDeltaJson delta, string? finish) =>
        new(reply.Id, "chat.completion.chunk", reply.Created, server.ModelId, [new ChatChunkChoice(0, delta, finish, null)], null, Reply.Fingerprint);
}

/// <summary>What a chat or text response accumulates: id, timing, reasoning-token count, usage and metrics.</summary>
internal sealed class Reply(SharpSeekServer server, ScheduledGeneration g, string id, bool startsInReasoning)
{
    public const string Fingerprint = "sharpseek";

    public string Id { get; } = id;

    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public bool StartsInReasoning { get; } = startsInReasoning;

    public int ReasoningTokens { get; private set; }

    /// <summary>Splits an update's text; on the last one, flushes the parser and records the metrics.</summary>
    public ChatDelta Push(ChatOutputParser parser, GenerationUpdate u)
    {
        if (parser.InReasoning)
            ReasoningTokens++;
        ChatDelta d = parser.Push(u.Text);
        if (u.FinishReason is null)
            return d;
        Finished(u);
        ChatDelta f = parser.Flush();
        return new ChatDelta(d.Reasoning + f.Reasoning, d.Content + f.Content, [.. d.ToolCalls, .. f.ToolCalls]);
    }

    public void Finished(GenerationUpdate u)
    {
        server.Metrics.Tokens(u.PromptTokens, u.CompletionTokens, g.CachedPromptTokens);
        if (g.TimeToFirstToken is TimeSpan ttft)
            server.Metrics.TimeToFirstToken(ttft);
        server.Metrics.Latency(g.Elapsed);
    }

    public ToolCallJson Call(ToolCall c, int? index) =>
        new(index, c.Id ?? "call_" + Guid.NewGuid().ToString("N")[..24], "function", new FunctionCallJson(c.Name, c.Arguments));

    public string FinishReason(GenerationUpdate last, bool toolCalls) =>
        toolCalls ? "tool_calls" : last.FinishReason == Inference.FinishReason.Length ? "length" : "stop";

    public UsageJson Usage(GenerationUpdate last) =>
        new(last.PromptTokens, last.CompletionTokens, last.PromptTokens + last.CompletionTokens,
            new PromptTokensDetails(g.CachedPromptTokens), new CompletionTokensDetails(ReasoningTokens));
}

/// <summary>Writes a text/event-stream response: <c>data: JSON</c> events, flushed one by one, then <c>data: [DONE]</c>.</summary>
internal sealed class ServerSentEvents(HttpContext ctx)
{
    private static readonly byte[] Data = "data: "u8.ToArray(), End = "\n\n"u8.ToArray(), DoneEvent = "data: [DONE]\n\n"u8.ToArray();

    public Task Start()
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        return ctx.Response.StartAsync(ctx.RequestAborted);
    }

    public async Task Write<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
    {
        Stream body = ctx.Response.Body;
        CancellationToken ct = ctx.RequestAborted;
        await body.WriteAsync(Data, ct).ConfigureAwait(false);
        await body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(value, info), ct).ConfigureAwait(false);
        await body.WriteAsync(End, ct).ConfigureAwait(false);
        await body.FlushAsync(ct).ConfigureAwait(false);
    }

    public async Task Done()
    {
        await ctx.Response.Body.WriteAsync(DoneEvent, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }

    public Task Error(Exception e)
    {
        (string type, string message) = e is OperationCanceledException ? ("server_error", "the request was cancelled")
                                      : e is ObjectDisposedException ? ("server_error", "the server is shutting down")
                                      : ("server_error", "internal server error: " + e.Message);
        return Write(new ErrorBody(new ErrorDetail(message, type, null, null)), OpenAiJsonContext.Api.ErrorBody);
    }
}
