// Bad input gets the right status and an OpenAI error body and the server keeps serving; the API key; loopback by
// default; metrics; prefix reuse over a 10-turn chat; concurrent HTTP requests equal the same requests alone; a client
// that disconnects or stops reading leaves nothing behind.
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace SharpSeek.Server.Tests;

public class ServerBehaviourTests
{
    private static async Task<JsonElement> Error(HttpResponseMessage r, HttpStatusCode status, string? param = null)
    {
        Assert.Equal(status, r.StatusCode);
        Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
        JsonElement e = (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.False(string.IsNullOrEmpty(e.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, e.GetProperty("type").ValueKind);
        if (param is not null)
            Assert.Equal(param, e.GetProperty("param").GetString());
        return e;
    }

    private static Task<HttpResponseMessage> Post(TestServer s, string body, string path = "v1/chat/completions") =>
        s.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));

    private static async Task AssertServes(TestServer s)
    {
        using HttpResponseMessage r = await Post(s, """{"messages":[{"role":"user","content":"still there?"}],"max_tokens":3}""");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    [Fact]
    public async Task BadRequestsGetOpenAiErrorsAndTheServerKeepsServing()
    {
        await using TestServer s = await TestServer.Start(new ServerOptions { MaxRequestBodyBytes = 1 << 20 });
        await Error(await Post(s, "{\"messages\": [tru"), HttpStatusCode.BadRequest);
        await Error(await Post(s, "[1, 2]"), HttpStatusCode.BadRequest);
        await Error(await Post(s, """{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"""), HttpStatusCode.BadRequest, "temperature");
        await Error(await Post(s, """{"messages":[{"role":"user","content":"x"}],"max_tokens":1.5}"""), HttpStatusCode.BadRequest, "max_tokens");
        await Error(await Post(s, """{"messages":"hi"}"""), HttpStatusCode.BadRequest, "messages");
        await Error(await Post(s, """{"messages":[]}"""), HttpStatusCode.BadRequest, "messages");
        await Error(await Post(s, """{"messages":[{"role":"user"}]}"""), HttpStatusCode.BadRequest, "messages[0].content");
        await Error(await Post(s, """{"messages":[{"role":"wizard","content":"x"}]}"""), HttpStatusCode.BadRequest, "messages[0].role");
        await Error(await Post(s, """{"messages":[{"role":"user","content":"x"}],"n":2}"""), HttpStatusCode.BadRequest, "n");
        await Error(await Post(s, """{"messages":[{"role":"user","content":"x"}],"tool_choice":"required"}"""), HttpStatusCode.BadRequest, "tool_choice");
        JsonElement e = await Error(await Post(s, """{"messages":[{"role":"user","content":"x"}],"max_tokens":100000}"""), HttpStatusCode.BadRequest, "max_tokens");
        Assert.Equal("context_length_exceeded", e.GetProperty("code").GetString());
        string longPrompt = string.Concat(Enumerable.Repeat("many words here ", 400));
        await Error(await Post(s, JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = longPrompt } } })), HttpStatusCode.BadRequest, "messages");
        await Error(await Post(s, """{"prompt":""}""", "v1/completions"), HttpStatusCode.BadRequest, "prompt");
        await Error(await Post(s, """{"prompt":[5, 99999]}""", "v1/completions"), HttpStatusCode.BadRequest, "prompt");
        // invalid UTF-8 inside a string
        byte[] bad = [.. """{"messages":[{"role":"user","content":" """u8, 0xC3, 0x28, .. "\"}]}"u8];
        await Error(await s.Http.PostAsync("v1/chat/completions", new ByteArrayContent(bad)), HttpStatusCode.BadRequest);
        // unpaired surrogate escapes (found by fuzzing the chat-template input): a 400, not a 500
        await Error(await Post(s, """{"messages":[{"role":"user","content":"x \ud800"}]}"""), HttpStatusCode.BadRequest);
        await Error(await Post(s, """{"messages":[{"role":"user","content":"x"}],"stop":"y\udc00"}"""), HttpStatusCode.BadRequest);
        // a 10 MB body
        string huge = JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = new string('a', 10_000_000) } } });
        // (Expect: 100-continue, so that the client reads the 413 instead of failing on the body the server refuses)
        using var big = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(huge, Encoding.UTF8, "application/json") };
        big.Headers.ExpectContinue = true;
        e = await Error(await s.Http.SendAsync(big), HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal("request_too_large", e.GetProperty("code").GetString());
        // unknown model, path, method
        e = await Error(await Post(s, """{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}"""), HttpStatusCode.NotFound, "model");
        Assert.Equal("model_not_found", e.GetProperty("code").GetString());
        await Error(await s.Http.GetAsync("v1/models/gpt-4"), HttpStatusCode.NotFound);
        await Error(await s.Http.GetAsync("v1/nothing"), HttpStatusCode.NotFound);
        await Error(await s.Http.GetAsync("v1/chat/completions"), HttpStatusCode.MethodNotAllowed);
        await AssertServes(s);
        string metrics = await s.Http.GetStringAsync("metrics");
        Assert.Contains("sharpseek_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"}", metrics);
        Assert.Contains("sharpseek_requests_total{endpoint=\"/v1/chat/completions\",status=\"413\"}", metrics);
        Assert.Contains("sharpseek_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1", metrics);
        Assert.Contains("sharpseek_kv_caches_unaccounted 0", metrics);
        Assert.Contains("process_resident_memory_bytes ", metrics);
    }

    [Fact]
    public async Task ApiKeyGuardsEverythingButHealthAndThePage()
    {
        await using TestServer s = await TestServer.Start(new ServerOptions { ApiKey = "sekrit" });
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("")).StatusCode);
        foreach (string path in new[] { "v1/models", "metrics", "v1/nothing" })
        {
            HttpResponseMessage r = await s.Http.GetAsync(path);
            JsonElement e = await Error(r, HttpStatusCode.Unauthorized);
            Assert.Equal("invalid_api_key", e.GetProperty("code").GetString());
            Assert.Equal("Bearer", r.Headers.WwwAuthenticate.Single().Scheme);
        }
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "v1/models") { Headers = { { "Authorization", "Bearer nope" } } };
        await Error(await s.Http.SendAsync(wrong), HttpStatusCode.Unauthorized);
        using var right = new HttpRequestMessage(HttpMethod.Get, "v1/models") { Headers = { { "Authorization", "Bearer sekrit" } } };
        Assert.Equal(HttpStatusCode.OK, (await s.Http.SendAsync(right)).StatusCode);
        // the OpenAI client sends the key as a bearer token
        OpenAI.Chat.ChatCompletion c = (await OpenAiClientTests.Client(s, "sekrit").CompleteChatAsync([new OpenAI.Chat.UserChatMessage("hi")],
                                         new OpenAI.Chat.ChatCompletionOptions { MaxOutputTokenCount = 2 })).Value;
        Assert.Equal(2, c.Usage.OutputTokenCount);
        await Assert.ThrowsAsync<System.ClientModel.ClientResultException>(() =>
            OpenAiClientTests.Client(s, "wrong").CompleteChatAsync([new OpenAI.Chat.UserChatMessage("hi")]));
    }

    [Fact]
    public async Task BindsLoopbackByDefault()
    {
        Assert.Equal("127.0.0.1", new ServerOptions().Host);
        await using TestServer s = await TestServer.Start();
        Assert.StartsWith("http://127.0.0.1:", s.Url);
        Assert.Throws<ArgumentException>(() => SharpSeekServer.Create(s.Session, new ServerOptions { Host = "../etc/passwd" }));
    }

    [Fact]
    public async Task FullQueueIs503AndTheServerRecovers()
    {
        await using TestServer s = await TestServer.Start(new ServerOptions { Batching = new() { MaxParallel = 1, MaxQueue = 0 } });
        // the tiny model samples its reply and may end it (EOS) before the second request arrives, which frees the only
        // place: then the first stream has ended, and the scenario is tried again with a new first request
        for (int attempt = 1; ; attempt++)
        {
            using var cts = new CancellationTokenSource();
            using var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
            {
                Content = new StringContent("""{"messages":[{"role":"user","content":"long"}],"max_tokens":400,"stream":true}""", Encoding.UTF8, "application/json"),
            };
            using HttpResponseMessage running = await s.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var reader = new StreamReader(await running.Content.ReadAsStreamAsync(cts.Token));
            await reader.ReadLineAsync(cts.Token); // the first chunk: the request holds the only place
            HttpResponseMessage refused = await Post(s, """{"messages":[{"role":"user","content":"x"}],"max_tokens":2}""");
            if (refused.StatusCode == HttpStatusCode.OK && attempt < 10)
            {
                // accepted: only right if the first request had already ended its reply (EOS, finish_reason stop) rather
                // than running on to max_tokens beside the second
                Task<string> rest = reader.ReadToEndAsync(cts.Token);
                Assert.True(await Task.WhenAny(rest, Task.Delay(30_000)) == rest, "a second request was accepted while the only place was taken");
                Assert.Contains("\"finish_reason\":\"stop\"", await rest);
                continue;
            }
            await Error(refused, HttpStatusCode.ServiceUnavailable);
            Assert.NotNull(refused.Headers.RetryAfter);
            cts.Cancel(); // the client goes away: its sequence is dropped
            break;
        }
        for (int i = 0; i < 200 && s.Server.Scheduler.Stats.Active > 0; i++)
            await Task.Delay(20);
        await AssertServes(s);
        Assert.Equal(0, s.Server.Scheduler.Stats.CachesUnaccounted);
        Assert.Equal(s.Server.Scheduler.Stats.Submitted, s.Server.Scheduler.Stats.Finished + s.Server.Scheduler.Stats.Cancelled);
    }

    [Fact]
    public async Task ClientThatStopsReadingLeavesNothingBehind()
    {
        await using TestServer s = await TestServer.Start();
        var uri = new Uri(s.Url);
        for (int k = 0; k < 3; k++)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(uri.Host, uri.Port);
            string body = """{"messages":[{"role":"user","content":"talk"}],"max_tokens":300,"stream":true}""";
            string head = $"POST /v1/chat/completions HTTP/1.1\r\nHost: {uri.Host}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n";
            await tcp.GetStream().WriteAsync(Encoding.UTF8.GetBytes(head + body));
            await Task.Delay(100); // never read a byte, then hang up
        }
        await AssertServes(s);
        for (int i = 0; i < 300 && s.Server.Scheduler.Stats.Active > 0; i++)
            await Task.Delay(20);
        Assert.Equal(0, s.Server.Scheduler.Stats.Active);
        Assert.Equal(0, s.Server.Scheduler.Stats.CachesUnaccounted);
    }

    [Fact]
    public async Task TenTurnChatReusesItsPrefixAndAnswersAsWithout()
    {
        await using TestServer cached = await TestServer.Start();
        await using TestServer fresh = await TestServer.Start(new ServerOptions { Batching = new() { PrefixCacheBytes = 0 } });
        var messages = new List<object> { new { role = "system", content = "You are a patient assistant." } };
        int previousPrompt = 0;
        for (int turn = 1; turn <= 10; turn++)
        {
            messages.Add(new { role = "user", content = $"Question number {turn}?" });
            var body = new { messages, max_tokens = 8, temperature = 0 };
            JsonElement a = await (await cached.Http.PostAsJsonAsync("v1/chat/completions", body)).Content.ReadFromJsonAsync<JsonElement>();
            JsonElement b = await (await fresh.Http.PostAsJsonAsync("v1/chat/completions", body)).Content.ReadFromJsonAsync<JsonElement>();
            string answer = a.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
            Assert.Equal(b.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), answer);
            JsonElement usage = a.GetProperty("usage");
            int prompt = usage.GetProperty("prompt_tokens").GetInt32(), hit = usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
            Assert.Equal(0, b.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
            if (turn > 1)
                Assert.InRange(hit, previousPrompt, prompt - 1); // at least the whole previous prompt is reused
            previousPrompt = prompt;
            messages.Add(new { role = "assistant", content = answer });
        }
    }

    [Fact]
    public async Task ConcurrentHttpRequestsEqualTheSameRequestsAlone()
    {
        await using TestServer s = await TestServer.Start(new ServerOptions { Batching = new() { PrefixCacheBytes = 0 } });
        object Body(int i) => new { messages = new[] { new { role = "user", content = $"Request {i}: " + new string('x', i * 3) } }, max_tokens = 10, temperature = 0 };
        async Task<string> Ask(int i) =>
            (await (await s.Http.PostAsJsonAsync("v1/chat/completions", Body(i))).Content.ReadFromJsonAsync<JsonElement>())
                .GetProperty("choices")[0].GetProperty("message").GetRawText();
        string[] together = await Task.WhenAll(Enumerable.Range(0, 16).Select(Ask));
        for (int i = 0; i < 16; i++)
            Assert.Equal(await Ask(i), together[i]);
    }
}
