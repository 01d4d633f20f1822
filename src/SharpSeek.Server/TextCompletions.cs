// POST /v1/completions: a raw prompt (text, encoded with BOS as the tokenizer adds it, or token ids) continued by the
// batch scheduler; text_completion objects, streamed as server-sent events or whole.
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpSeek.Inference;

namespace SharpSeek.Server;

internal static class TextCompletions
{
    public static async Task Handle(HttpContext ctx, SharpSeekServer server)
    {
        CompletionRequest req;
        using (JsonDocument doc = await SharpSeekServer.ReadJson(ctx).ConfigureAwait(false))
            req = SharpSeekServer.Parse(doc, OpenAiRequests.ParseCompletion);
        server.CheckModel(req.Model);
        int[] ids = req.PromptIds ?? server.Tokenizer.Encode(req.PromptText!, addSpecialTokens: true);
        int V = server.Session.Config.VocabSize;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)V)
                throw ApiException.BadRequest($"prompt token {id} is outside the vocabulary of {V}", "prompt");
        }
        GenerationOptions options = server.Generation(req, ids.Length);
        ScheduledGeneration g = server.Submit(ids, options, ctx.RequestAborted);
        var reply = new Reply(server, g, "cmpl-" + Guid.NewGuid().ToString("N")[..24], startsInReasoning: false);
        if (req.Stream)
        {
            var sse = new ServerSentEvents(ctx);
            await sse.Start().ConfigureAwait(false);
            try
            {
                await foreach (GenerationUpdate u in g.ReadAllAsync(ctx.RequestAborted).ConfigureAwait(false))
                {
                    string? finish = null;
                    if (u.FinishReason is not null)
                    {
                        reply.Finished(u);
                        finish = reply.FinishReason(u, toolCalls: false);
                    }
                    if (u.Text.Length > 0 || finish is not null)
                        await sse.Write(Body(server, reply, u.Text, finish, null), OpenAiJsonContext.Api.TextCompletionJson).ConfigureAwait(false);
                    if (finish is not null && req.IncludeUsage)
                        await sse.Write(new TextCompletionJson(reply.Id, "text_completion", reply.Created, server.ModelId, [], reply.Usage(u), Reply.Fingerprint),
                                        OpenAiJsonContext.Api.TextCompletionJson).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !ctx.RequestAborted.IsCancellationRequested)
            {
                await sse.Error(e).ConfigureAwait(false);
                return;
            }
            await sse.Done().ConfigureAwait(false);
            return;
        }
        var text = new StringBuilder();
        GenerationUpdate last = default;
        await foreach (GenerationUpdate u in g.ReadAllAsync(ctx.RequestAborted).ConfigureAwait(false))
        {
            text.Append(u.Text);
            last = u;
        }
        reply.Finished(last);
        await SharpSeekServer.Json(ctx, Body(server, reply, text.ToString(), reply.FinishReason(last, false), reply.Usage(last)),
                                   OpenAiJsonContext.Api.TextCompletionJson).ConfigureAwait(false);
    }

    private static TextCompletionJson Body(SharpSeekServer server, Reply reply, string text, string? finish, UsageJson? usage) =>
        new(reply.Id, "text_completion", reply.Created, server.ModelId, [new CompletionChoice(text, 0, null, finish)], usage, Reply.Fingerprint);
}
