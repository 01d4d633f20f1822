// Load client for `sharpseek serve` over loopback HTTP (bench/server/run.sh drives it); prints Markdown tables.
//   throughput  S concurrent streamed chat requests (distinct prompts, greedy, the same max_tokens), R rounds per S:
//               steady decode tokens/s = deltas received while all S requests were decoding (after the last first
//               token, before the first end) / that window's length, its ratio to one stream; overall tokens/s =
//               completion tokens / wall time (prefill included); p50/p99 time to first token (first non-empty delta)
//   prefix      a 10-turn chat (each turn sends the whole conversation): cached_tokens and TTFT per turn; then turn 10's
//               messages with the first character of the system prompt changed (same length, nothing reusable)
//   load        N requests from C workers: mixed prompt lengths and max_tokens, half streamed, a share of the streamed
//               ones cancelled mid-stream; /metrics read at start, middle and end (resident memory, threads, caches,
//               sequences), and the end state checked for leaks (exit code 3 when a check fails)
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace SharpSeek.ServerBench;

internal static class Program
{
    private static readonly string[] Words =
    [
        "the", "house", "was", "quiet", "when", "Anne", "walked", "down", "to", "the", "sea", "and", "thought", "of",
        "letters", "never", "sent", "captain", "navy", "evening", "garden", "music", "rain", "bath", "friend", "long",
        "years", "persuasion", "family", "estate", "walk", "morning", "conversation", "opinion", "kindness", "voice",
    ];

    public static async Task<int> Main(string[] args)
    {
        if (args.Length < 1)
        {
            Console.Error.WriteLine("usage: ServerBench throughput|prefix|load --url URL [--streams 1,4,16,64] [--rounds R] [--prompt-words W] " +
                                    "[--max-tokens G] [--turns T] [--requests N] [--concurrency C] [--cancel-percent P] [--seed S]");
            return 2;
        }
        var o = Options.Parse(args[1..]);
        // MaxResponseDrainSize 0: a response disposed before its end closes the connection (a hang-up the server sees)
        // instead of being read to its end in the background so that the connection can be reused (the handler drains up
        // to 1 MB for 2 s by default: a cancelled stream of a few hundred tokens then ran to its end on the server)
        using var handler = new SocketsHttpHandler { MaxResponseDrainSize = 0 };
        using var http = new HttpClient(handler) { BaseAddress = new Uri(o.Url.TrimEnd('/') + "/"), Timeout = TimeSpan.FromMinutes(30) };
        return args[0] switch
        {
            "throughput" => await Throughput(http, o),
            "prefix" => await Prefix(http, o),
            "load" => await Load(http, o),
            _ => throw new ArgumentException($"unknown mode '{args[0]}'"),
        };
    }

    // ---- throughput ----

    private static async Task<int> Throughput(HttpClient http, Options o)
    {
        Console.WriteLine($"| streams | requests | prompt tokens (mean) | completion tokens | steady decode tok/s (all streams decoding) | vs 1 stream | overall tok/s (incl. prefill) | vs 1 stream | TTFT p50 (s) | TTFT p99 (s) | wall (s) |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        // warm-up (JIT, buffers): one request alone, then the largest batch, a few tokens each, not measured
        var warm = new Random(o.Seed - 1);
        await Chat(http, [("user", "Warm-up: " + Prompt(warm, o.PromptWords))], 4, null, Stopwatch.GetTimestamp());
        await Task.WhenAll(Enumerable.Range(0, o.Streams.Max()).Select(i =>
            Chat(http, [("user", $"Warm-up {i}: " + Prompt(warm, o.PromptWords))], 4, null, Stopwatch.GetTimestamp())));
        double? single = null, singleOverall = null;
        int id = 0;
        foreach (int streams in o.Streams)
        {
            var results = new List<StreamResult>();
            double decodeTokens = 0, decodeSeconds = 0, wall = 0;
            for (int round = 0; round < o.Rounds; round++)
            {
                var rng = new Random(o.Seed + 1000 * streams + round);
                var start = Stopwatch.GetTimestamp();
                Task<StreamResult>[] tasks = [.. Enumerable.Range(0, streams).Select(_ =>
                    Chat(http, [("user", $"Request {id++}: " + Prompt(rng, o.PromptWords))], o.MaxTokens, cancelAfter: null, start))];
                StreamResult[] done = await Task.WhenAll(tasks);
                wall += Stopwatch.GetElapsedTime(start).TotalSeconds;
                // the window in which every request of the round was decoding: each delta in it is one step's token
                double from = done.Max(r => r.FirstToken), to = done.Min(r => r.End);
                if (to > from)
                {
                    decodeTokens += done.Sum(r => r.DeltaTimes.Count(t => t > from && t <= to));
                    decodeSeconds += to - from;
                }
                results.AddRange(done);
            }
            double steady = decodeSeconds > 0 ? decodeTokens / decodeSeconds : double.NaN;
            double overall = results.Sum(r => r.CompletionTokens) / wall;
            single ??= streams == 1 ? steady : null;
            singleOverall ??= streams == 1 ? overall : null;
            double[] ttft = [.. results.Select(r => r.FirstToken).Order()];
            int stopped = results.Count(r => r.Finish != "length");
            Console.WriteLine($"| {streams} | {results.Count} | {results.Average(r => r.PromptTokens):F0} | {results.Sum(r => r.CompletionTokens)}{(stopped > 0 ? $" ({stopped} ended early)" : "")} | " +
                              $"{steady:F2} | {(single is double s ? $"{steady / s:F2}x" : "-")} | {overall:F2} | {(singleOverall is double so ? $"{overall / so:F2}x" : "-")} | " +
                              $"{Percentile(ttft, 0.5):F2} | {Percentile(ttft, 0.99):F2} | {wall:F1} |");
        }
        return 0;
    }

    // ---- prefix reuse ----

    private static async Task<int> Prefix(HttpClient http, Options o)
    {
        var rng = new Random(o.Seed);
        const string System = "You are a careful reader of novels. Answer briefly.";
        var messages = new List<(string Role, string Content)> { ("system", System) };
        Console.WriteLine("| turn | prompt tokens | cached tokens | computed | TTFT (s) |");
        Console.WriteLine("|---:|---:|---:|---:|---:|");
        StreamResult last = default;
        for (int turn = 1; turn <= o.Turns; turn++)
        {
            messages.Add(("user", $"Question {turn}: " + Prompt(rng, o.PromptWords)));
            last = await Chat(http, messages, o.MaxTokens, null, Stopwatch.GetTimestamp());
            messages.Add(("assistant", last.Text));
            Console.WriteLine($"| {turn} | {last.PromptTokens} | {last.CachedTokens} | {last.PromptTokens - last.CachedTokens} | {last.FirstToken:F3} |");
        }
        // turn 10 again without anything to reuse: the same messages with the first character of the system prompt
        // changed ("You" -> "Xou"), so only BOS is shared
        messages.RemoveAt(messages.Count - 1);
        messages[0] = ("system", "X" + System[1..]);
        StreamResult cold = await Chat(http, messages, o.MaxTokens, null, Stopwatch.GetTimestamp());
        Console.WriteLine();
        Console.WriteLine($"Turn {o.Turns} with reuse: {last.PromptTokens} prompt tokens, {last.CachedTokens} cached, TTFT {last.FirstToken:F3} s; " +
                          $"without (system prompt's first character changed): {cold.PromptTokens} prompt tokens, {cold.CachedTokens} cached, " +
                          $"TTFT {cold.FirstToken:F3} s ({cold.FirstToken / last.FirstToken:F1}x).");
        return 0;
    }

    // ---- load ----

    private static async Task<int> Load(HttpClient http, Options o)
    {
        if (o.Requests < 2)
            throw new ArgumentException("--requests must be at least 2 (metrics are read at the middle)");
        Dictionary<string, double> before = await Metrics(http);
        var rng = new Random(o.Seed);
        // a request to cancel is streamed and asks for 4x max tokens, so that hanging up after 1-5 chunks cuts it mid-stream
        var plan = Enumerable.Range(0, o.Requests).Select(i => rng.Next(100) < o.CancelPercent
            ? new Planned(i, rng.Next(3, 160), 4 * o.MaxTokens, Stream: true, CancelAfterChunks: rng.Next(1, 6))
            : new Planned(i, rng.Next(3, 160), rng.Next(1, o.MaxTokens + 1), Stream: rng.Next(2) == 0, CancelAfterChunks: null)).ToArray();
        int next = -1, completed = 0, ok = 0, cancelled = 0, failed = 0;
        long tokens = 0;
        var errors = new Dictionary<string, int>();
        Dictionary<string, double>? middle = null;
        var middleTaken = new TaskCompletionSource();
        var clock = Stopwatch.StartNew();
        async Task Worker()
        {
            while (true)
            {
                int i = Interlocked.Increment(ref next);
                if (i >= plan.Length)
                    return;
                Planned p = plan[i];
                string prompt = $"Load {i}: " + Prompt(new Random(o.Seed + i), p.PromptWords);
                try
                {
                    if (p.Stream)
                    {
                        StreamResult r = await Chat(http, [("user", prompt)], p.MaxTokens, p.CancelAfterChunks, Stopwatch.GetTimestamp());
                        Interlocked.Add(ref tokens, r.CompletionTokens);
                        if (r.Cancelled)
                            Interlocked.Increment(ref cancelled);
                        else
                            Interlocked.Increment(ref ok);
                    }
                    else
                    {
                        Interlocked.Add(ref tokens, await Whole(http, prompt, p.MaxTokens));
                        Interlocked.Increment(ref ok);
                    }
                }
                catch (Exception e) when (e is HttpRequestException or InvalidDataException or JsonException)
                {
                    Interlocked.Increment(ref failed);
                    lock (errors)
                        errors[e.Message] = errors.GetValueOrDefault(e.Message) + 1;
                }
                if (Interlocked.Increment(ref completed) == plan.Length / 2)
                {
                    middle = await Metrics(http);
                    middleTaken.SetResult();
                }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, o.Concurrency).Select(_ => Task.Run(Worker)));
        double seconds = clock.Elapsed.TotalSeconds;
        if (plan.Length >= 2)
            await middleTaken.Task;
        // the server finishes cancelled sequences at its next step: wait until it is idle
        Dictionary<string, double> after = await Metrics(http);
        for (int i = 0; i < 300 && (after["sharpseek_active_sequences"] > 0 || after["sharpseek_queue_depth"] > 0); i++)
        {
            await Task.Delay(100);
            after = await Metrics(http);
        }

        Console.WriteLine($"{plan.Length} requests from {o.Concurrency} workers in {seconds:F1} s ({plan.Length / seconds:F1} requests/s, {tokens / seconds:F1} completion tok/s): " +
                          $"{ok} completed, {cancelled} cancelled mid-stream by the client, {failed} failed; prompts of 3..160 words, max_tokens 1..{o.MaxTokens}, " +
                          $"{plan.Count(p => p.Stream)} streamed, {plan.Count(p => p.CancelAfterChunks is not null)} to cancel after 1-5 chunks (max_tokens {4 * o.MaxTokens}).");
        foreach ((string message, int n) in errors)
            Console.WriteLine($"- error x{n}: {message}");
        Console.WriteLine();
        string[] rows =
        [
            "process_resident_memory_bytes", "dotnet_gc_heap_bytes", "process_threads", "sharpseek_active_sequences", "sharpseek_queue_depth",
            "sharpseek_kv_caches", "sharpseek_kv_caches_unaccounted", "sharpseek_prefix_cache_entries", "sharpseek_prefix_cache_bytes",
            "sharpseek_sequences_finished_total", "sharpseek_sequences_cancelled_total", "sharpseek_sequences_failed_total", "sharpseek_completion_tokens_total",
        ];
        Console.WriteLine("| /metrics | start | middle | end |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (string r in rows)
            Console.WriteLine($"| {r} | {Show(r, before)} | {Show(r, middle!)} | {Show(r, after)} |");
        Console.WriteLine();

        // the end state: nothing running or queued, every cache accounted for, every sequence ended, threads flat
        double Delta(string name) => after.GetValueOrDefault(name) - before.GetValueOrDefault(name);
        var checks = new List<(string, bool)>
        {
            ("no active sequence", after["sharpseek_active_sequences"] == 0),
            ("empty queue", after["sharpseek_queue_depth"] == 0),
            ("no unaccounted cache", after["sharpseek_kv_caches_unaccounted"] == 0),
            ("every request ended as a sequence (finished + cancelled + failed = requests)",
                Delta("sharpseek_sequences_finished_total") + Delta("sharpseek_sequences_cancelled_total") + Delta("sharpseek_sequences_failed_total") == plan.Length),
            ("no failed sequence", Delta("sharpseek_sequences_failed_total") == 0),
            // a hung-up sequence can still end on its own (EOS) before the server's next step sees the hang-up: most, not all
            ("the server saw the hang-ups (cancelled sequences >= 90% of the client's hang-ups)",
                Delta("sharpseek_sequences_cancelled_total") >= 0.9 * cancelled),
            ("no failed request", failed == 0),
            ("threads at end <= threads at middle + 8", after["process_threads"] <= middle!["process_threads"] + 8),
        };
        foreach ((string what, bool pass) in checks)
            Console.WriteLine($"- {(pass ? "ok" : "FAILED")}: {what}");
        return checks.All(c => c.Item2) ? 0 : 3;
    }

    private static string Show(string name, Dictionary<string, double> m) =>
        !m.TryGetValue(name, out double v) ? "-" : name.EndsWith("_bytes", StringComparison.Ordinal) ? $"{v / (1 << 20):F0} MiB" : v.ToString("0", CultureInfo.InvariantCulture);

    private static async Task<Dictionary<string, double>> Metrics(HttpClient http)
    {
        string text = await http.GetStringAsync("metrics");
        var m = new Dictionary<string, double>();
        foreach (string line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#' || line.Contains('{', StringComparison.Ordinal))
                continue;
            int sp = line.LastIndexOf(' ');
            if (sp > 0 && double.TryParse(line[(sp + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                m[line[..sp]] = v;
        }
        return m;
    }

    // ---- requests ----

    private sealed record Planned(int Index, int PromptWords, int MaxTokens, bool Stream, int? CancelAfterChunks);

    /// <summary>A streamed chat request's timings (seconds from <c>start</c>), counts and text.</summary>
    private record struct StreamResult(double FirstToken, double End, int PromptTokens, int CachedTokens, int CompletionTokens,
                                       string Finish, string Text, bool Cancelled, List<double> DeltaTimes);

    private static string Prompt(Random rng, int words)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < words; i++)
            sb.Append(i == 0 ? "" : " ").Append(Words[rng.Next(Words.Length)]);
        return sb.Append('.').ToString();
    }

    private static StringContent Body(IEnumerable<(string Role, string Content)> messages, int maxTokens, bool stream)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("messages");
            foreach ((string role, string content) in messages)
            {
                w.WriteStartObject();
                w.WriteString("role", role);
                w.WriteString("content", content);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("max_tokens", maxTokens);
            w.WriteNumber("temperature", 0);
            w.WriteBoolean("stream", stream);
            if (stream)
            {
                w.WriteStartObject("stream_options");
                w.WriteBoolean("include_usage", true);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        var body = new StringContent(Encoding.UTF8.GetString(buffer.ToArray()), Encoding.UTF8);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return body;
    }

    // Streams one chat request; with cancelAfter, stops reading after that many content chunks and hangs up.
    private static async Task<StreamResult> Chat(HttpClient http, IEnumerable<(string Role, string Content)> messages, int maxTokens, int? cancelAfter, long start)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = Body(messages, maxTokens, stream: true) };
        using var cts = new CancellationTokenSource();
        using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        var text = new StringBuilder();
        var times = new List<double>(maxTokens);
        double first = 0, end = 0;
        int chunks = 0, promptTokens = 0, cached = 0, completion = 0;
        string finish = "";
        bool done = false;
        while (await reader.ReadLineAsync(cts.Token) is string line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
                continue;
            if (line == "data: [DONE]")
            {
                done = true;
                break;
            }
            using JsonDocument doc = JsonDocument.Parse(line.AsMemory(6));
            JsonElement root = doc.RootElement;
            if (root.TryGetProperty("error", out JsonElement error))
                throw new InvalidDataException("error in the stream: " + error.GetProperty("message").GetString());
            if (root.TryGetProperty("usage", out JsonElement usage) && usage.ValueKind == JsonValueKind.Object)
            {
                promptTokens = usage.GetProperty("prompt_tokens").GetInt32();
                completion = usage.GetProperty("completion_tokens").GetInt32();
                cached = usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
            }
            JsonElement choices = root.GetProperty("choices");
            if (choices.GetArrayLength() == 0)
                continue;
            JsonElement choice = choices[0];
            if (choice.GetProperty("finish_reason").ValueKind == JsonValueKind.String)
                finish = choice.GetProperty("finish_reason").GetString()!;
            JsonElement delta = choice.GetProperty("delta");
            string piece = (delta.TryGetProperty("content", out JsonElement c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null) ?? "";
            string reasoning = (delta.TryGetProperty("reasoning_content", out JsonElement rc) && rc.ValueKind == JsonValueKind.String ? rc.GetString() : null) ?? "";
            if (piece.Length + reasoning.Length > 0 || delta.TryGetProperty("tool_calls", out _))
            {
                double now = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (first == 0)
                    first = now;
                end = now;
                times.Add(now);
                text.Append(piece);
                if (++chunks == cancelAfter)
                {
                    cts.Cancel(); // hang up mid-stream: the server drops the sequence at its next step
                    return new StreamResult(first, end, 0, 0, chunks, "cancelled", text.ToString(), Cancelled: true, times);
                }
            }
        }
        if (!done)
            throw new InvalidDataException("the stream ended without data: [DONE]");
        end = Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (first == 0)
            first = end; // nothing visible was generated (for example EOS first)
        return new StreamResult(first, end, promptTokens, cached, completion, finish, text.ToString(), Cancelled: false, times);
    }

    private static async Task<int> Whole(HttpClient http, string prompt, int maxTokens)
    {
        using HttpResponseMessage r = await http.PostAsync("v1/chat/completions", Body([("user", prompt)], maxTokens, stream: false));
        string body = await r.Content.ReadAsStringAsync();
        if (!r.IsSuccessStatusCode)
            throw new HttpRequestException($"HTTP {(int)r.StatusCode}: {body}");
        using JsonDocument doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
    }

    private static double Percentile(double[] sorted, double q)
    {
        if (sorted.Length == 0)
            return double.NaN;
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo); // linear interpolation between ranks
    }

    private sealed record Options
    {
        public string Url { get; init; } = "http://127.0.0.1:8080";
        public int[] Streams { get; init; } = [1, 4, 16, 64];
        public int Rounds { get; init; } = 2;
        public int PromptWords { get; init; } = 24;
        public int MaxTokens { get; init; } = 32;
        public int Turns { get; init; } = 10;
        public int Requests { get; init; } = 200;
        public int Concurrency { get; init; } = 64;
        public int CancelPercent { get; init; } = 10;
        public int Seed { get; init; } = 1;

        public static Options Parse(string[] args)
        {
            var o = new Options();
            for (int i = 0; i + 1 < args.Length; i += 2)
            {
                string v = args[i + 1];
                o = args[i] switch
                {
                    "--url" => o with { Url = v },
                    "--streams" => o with { Streams = [.. v.Split(',').Select(int.Parse)] },
                    "--rounds" => o with { Rounds = int.Parse(v, CultureInfo.InvariantCulture) },
                    "--prompt-words" => o with { PromptWords = int.Parse(v, CultureInfo.InvariantCulture) },
                    "--max-tokens" => o with { MaxTokens = int.Parse(v, CultureInfo.InvariantCulture) },
                    "--turns" => o with { Turns = int.Parse(v, CultureInfo.InvariantCulture) },
                    "--requests" => o with { Requests = int.Parse(v, CultureInfo.InvariantCulture) },
                    "--concurrency" => o with { Concurrency = int.Parse(v, CultureInfo.InvariantCulture) },
                    "--cancel-percent" => o with { CancelPercent = int.Parse(v, CultureInfo.InvariantCulture) },
                    "--seed" => o with { Seed = int.Parse(v, CultureInfo.InvariantCulture) },
                    _ => throw new ArgumentException($"unknown option '{args[i]}'"),
                };
            }
            if (args.Length % 2 != 0)
                throw new ArgumentException($"option '{args[^1]}' has no value");
            return o;
        }
    }
}
